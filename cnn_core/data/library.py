"""The user's named image datasets: ``data add NAME PATH_OR_ZIP``, ``data list``, ``data remove NAME``.

Each lives in its own folder under ``settings.datasets_dir()``: ``images/`` (a copy of the class folders,
image files only), ``dataset.json`` (size, channels, fit, classes, counts, what was skipped) and the decoded
cache. A dataset is built in a hidden staging folder and renamed into place only once it decoded, so a
failed or interrupted add leaves nothing behind and a half-written dataset is never listed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np

from cnn_core import safejson
from cnn_core.config import PHOTO_SIZES as SIZES
from cnn_core.data.archive import MAX_UNPACKED_BYTES, extract_zip
from cnn_core.data.cache import load_image_folder
from cnn_core.data.folders import IMAGE_EXTENSIONS, FolderImages, Progress, list_images, skipped_note
from cnn_core.data.photo import check_fit
from cnn_core.errors import BadDataset, CnnLabError, DatasetNotFound, InvalidConfig, NotAllowed, storage_error
from cnn_core.files import atomic_write, folder_bytes
from cnn_core.people import LOCAL_ID, Person
from cnn_core.safetext import escape_controls, escape_skipped
from cnn_core.settings import datasets_dir

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")
STATS_SAMPLE = 2_000  # images used for the normalising mean and std: plenty for two numbers


@dataclass(frozen=True)
class LibraryDataset:
    """What ``dataset.json`` records about a named dataset."""

    name: str
    size: int
    channels: int  # what the images became (1 or 3)
    channels_option: int | str  # what was asked for ("auto", 1 or 3): part of the decoding cache key
    fit: str
    classes: list[str]
    train_counts: list[int]
    test_counts: list[int]
    skipped: list[list[str]]
    mean: float
    std: float
    source: str
    created: float
    owner: str = LOCAL_ID  # who added it (``cnn_core.people``); datasets from before owners are the local owner's
    shared: bool = False  # offered to everyone, not only to its owner (and administrators)

    def __post_init__(self) -> None:
        # Names read from the user's files, escaped here too for a dataset.json written before they were at reading
        object.__setattr__(self, "classes", [escape_controls(str(c)) for c in self.classes])
        object.__setattr__(self, "skipped", [list(pair) for pair in escape_skipped(self.skipped)])
        object.__setattr__(self, "source", escape_controls(str(self.source)))

    @property
    def images(self) -> int:
        return sum(self.train_counts) + sum(self.test_counts)


def check_name(name: str, reserved: tuple[str, ...] = ()) -> str:
    if not isinstance(name, str) or not NAME.match(name) or name in (".", ".."):
        raise InvalidConfig(
            f"dataset name {str(name)[:50]!r} is not allowed: use 1 to 48 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    if name.lower() in reserved:
        raise InvalidConfig(f"{name!r} is the name of a built-in dataset; choose another name")
    return name


def folder_of(name: str) -> Path:
    return datasets_dir() / check_name(name)


def add_dataset(
    name: str,
    source: str | os.PathLike[str] | bytes | BinaryIO,
    size: int = 32,
    channels: int | str = "auto",
    fit: str = "crop",
    progress: Progress | None = None,
    reserved: tuple[str, ...] = (),
    owner: str = LOCAL_ID,
) -> LibraryDataset:
    """Copy (or unzip) class folders into the library, decode them once and record what they hold.

    Names are one namespace for everyone (a run records its dataset by name): a name someone else took is
    refused like any taken name."""
    check_name(name, reserved)
    if size not in SIZES:
        raise InvalidConfig(f"size: expected one of {', '.join(map(str, SIZES))}, got {size!r}")
    check_fit(fit)
    if (datasets_dir() / name).exists():
        raise InvalidConfig(f"a dataset named {name!r} already exists: remove it first or choose another name")
    datasets_dir().mkdir(parents=True, exist_ok=True)
    _remove_leftovers()
    staging = Path(tempfile.mkdtemp(prefix=".adding-", dir=datasets_dir()))
    try:
        skipped = _fill(source, staging / "images")
        images, _ = load_image_folder(staging / "images", size, channels, fit, cache_dir=staging, progress=progress)
        entry = replace(_describe(name, images, skipped, size, channels, fit, _source_label(source)), owner=owner)
        atomic_write(staging / "dataset.json", json.dumps(asdict(entry), indent=1).encode())
        try:
            os.rename(staging, datasets_dir() / name)  # atomic: the dataset appears whole or not at all
        except OSError:
            raise InvalidConfig(
                f"a dataset named {name!r} already exists: remove it first or choose another name"
            ) from None
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError) and not isinstance(err, CnnLabError):  # a full disk, a vanished file
            raise storage_error(err, f"adding dataset {name!r} to {datasets_dir()}") from None
        raise
    return entry


def _remove_leftovers(min_age_s: float = 3600) -> None:
    """Staging and trash folders of an add or remove that was killed an hour or more ago."""
    for old in [*datasets_dir().glob(".adding-*"), *datasets_dir().glob(".removing-*")]:
        try:
            if time.time() - old.stat().st_mtime > min_age_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


def _fill(source: str | os.PathLike[str] | bytes | BinaryIO, images: Path) -> list[tuple[str, str]]:
    """Unzip an upload or a .zip path, or copy a folder's image files, into ``images``."""
    images.mkdir()
    is_folder = isinstance(source, (str, os.PathLike)) and Path(source).is_dir()
    if not is_folder:
        if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
            raise DatasetNotFound(f"{os.fspath(source)} is neither a folder nor a zip file")
        skipped = extract_zip(source, images)
        if not any(path.is_file() for path in images.rglob("*")):
            raise BadDataset(f"no image files in the zip ({', '.join(IMAGE_EXTENSIONS)}){skipped_note(skipped)}")
        return skipped
    listing = list_images(cast("str | os.PathLike[str]", source))  # a folder: is_folder above
    total = sum(f[3] for f in listing.files)
    if total > MAX_UNPACKED_BYTES:
        raise BadDataset(f"the folder's images are {total / 2**30:.1f} GiB; at most 2 GiB is accepted")
    for rel, *_ in listing.files:
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(listing.root / rel, images / rel)  # copy2 keeps the times the cache key uses
    return listing.skipped


def _source_label(source: str | os.PathLike[str] | bytes | BinaryIO) -> str:
    return Path(source).name if isinstance(source, (str, os.PathLike)) else "an uploaded zip"


def _describe(
    name: str,
    images: FolderImages,
    skipped: list[tuple[str, str]],
    size: int,
    channels: int | str,
    fit: str,
    source: str,
) -> LibraryDataset:
    train = images.labels if images.is_test is None else images.labels[~images.is_test]
    test = np.zeros(0, np.int64) if images.is_test is None else images.labels[images.is_test]
    n = len(images.classes)
    sample = images.images[:: max(1, len(images.images) // STATS_SAMPLE)].astype(np.float32) / 255
    return LibraryDataset(
        name=name,
        size=size,
        channels=int(images.images.shape[1]),
        channels_option=channels,
        fit=fit,
        classes=images.classes,
        train_counts=np.bincount(train, minlength=n).tolist(),
        test_counts=np.bincount(test, minlength=n).tolist(),
        skipped=[list(s) for s in (skipped + images.skipped)][:1000],
        mean=round(float(sample.mean()), 4),
        std=round(max(float(sample.std()), 0.001), 4),
        source=source,
        created=time.time(),
    )


def _missing(name: str) -> DatasetNotFound:
    return DatasetNotFound(f"no dataset named {name!r}; `cnn-lab data list` shows the ones there are")


def get_dataset(name: str, visible_to: Person | None = None) -> LibraryDataset:
    """A dataset by name; for ``visible_to`` only one they may see: another person's private dataset is
    answered exactly like a missing one."""
    path = folder_of(name) / "dataset.json"
    try:
        data = safejson.loads(path.read_bytes(), f"{path}")
        entry = LibraryDataset(**data)
    except FileNotFoundError:
        raise _missing(name) from None
    except (OSError, TypeError, ValueError, InvalidConfig) as err:
        if visible_to is not None and not visible_to.admin:
            raise _missing(name) from None  # whose it is cannot be read: not theirs to hear about
        raise BadDataset(f"dataset {name!r} has a damaged dataset.json ({err}); remove it and add it again") from None
    if visible_to is not None and not visible_to.may_see(entry.owner, entry.shared):
        raise _missing(name)
    return entry


def get_to_change(name: str, by: Person | None) -> LibraryDataset:
    """A dataset ``by`` may change (reorder, share, remove): their own, or any for an administrator."""
    entry = get_dataset(name, visible_to=by)
    if by is not None and not by.may_change(entry.owner):
        raise NotAllowed(f"dataset {name!r} is shared with you: only its owner or an administrator can change it")
    return entry


def list_datasets(visible_to: Person | None = None, owner: str | None = None) -> list[LibraryDataset]:
    """Every named dataset (those a person may see, or one owner's), by name; a damaged one is left out here
    (``get_dataset`` says what is wrong)."""
    found = []
    root = datasets_dir()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if NAME.match(folder.name) and (folder / "dataset.json").is_file():
            try:
                found.append(get_dataset(folder.name, visible_to))
            except (BadDataset, DatasetNotFound, InvalidConfig):
                continue
    return [d for d in found if owner is None or d.owner == owner]


def disk_usage(owner: str) -> int:
    """Bytes in one owner's datasets (copied images and decoded cache): what a disk quota counts."""
    return sum(folder_bytes(folder_of(entry.name)) for entry in list_datasets(owner=owner))


def share_dataset(name: str, shared: bool, by: Person | None = None) -> LibraryDataset:
    """Offer a dataset to everyone (a teacher's class set), or to its owner (and administrators) only again."""
    changed = replace(get_to_change(name, by), shared=shared)
    atomic_write(folder_of(name) / "dataset.json", json.dumps(asdict(changed), indent=1).encode())
    return changed


def remove_dataset(name: str, by: Person | None = None) -> None:
    """Delete a named dataset: first renamed out of sight, so it never appears half-deleted."""
    folder = folder_of(name)
    if not (folder / "dataset.json").is_file():
        raise _missing(name)
    get_to_change(name, by)
    trash = folder.with_name(f".removing-{name}-{os.getpid()}-{time.monotonic_ns()}")
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def library_images(entry: LibraryDataset, progress: Progress | None = None) -> FolderImages:
    """The dataset's decoded images: from its cache, or decoded again if its files changed."""
    folder = folder_of(entry.name)
    images, _ = load_image_folder(
        folder / "images",
        entry.size,
        entry.channels_option,
        entry.fit,
        cache_dir=folder,
        progress=progress,
        order=entry.classes,  # the order saved when it was added (or chosen since): its labels stay as they were
    )
    return images


def set_class_order(name: str, classes: list[str], by: Person | None = None) -> LibraryDataset:
    """Give dataset ``name`` a new order of its classes (label 0 is the first): the same names, reordered.
    Runs trained before keep the order they were trained with (it is saved with their checkpoints)."""
    entry = get_to_change(name, by)
    if sorted(classes) != sorted(entry.classes):
        missing = sorted(set(entry.classes) - set(classes))
        extra = sorted(set(classes) - set(entry.classes))
        raise BadDataset(
            f"the order must name each of the {len(entry.classes)} classes once"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not classes of {name}: {', '.join(extra)}" if extra else "")
        )
    at = [entry.classes.index(c) for c in classes]
    reordered = replace(
        entry,
        classes=list(classes),
        train_counts=[entry.train_counts[i] for i in at],
        test_counts=[entry.test_counts[i] for i in at],
    )
    atomic_write(folder_of(name) / "dataset.json", json.dumps(asdict(reordered), indent=1).encode())
    return reordered
