"""A folder of class folders (``cats/``, ``dogs/``; optionally inside ``train/`` and ``test/``) as tensors.

Every image is decoded once with the same safe loader as an upload (``cnn_core.data.preprocess.load_image``:
size caps, an allow-list of formats, first frame only, EXIF orientation, any colour mode to RGB), made
square and resized by ``cnn_core.data.photo``, then kept as uint8 like the IDX datasets. What cannot be read is
skipped and listed; what makes the whole folder unusable is one ``BadDataset`` line saying what to fix.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from cnn_core.data.photo import check_fit, is_grey, resize_square, to_channels
from cnn_core.data.preprocess import load_image
from cnn_core.errors import BadDataset, BadImage, CnnLabError, DatasetNotFound, storage_error
from cnn_core.safetext import escape_controls, escape_skipped

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_IMAGES = 40_000  # 40,000 RGB 64×64 images are 490 MB of uint8: a teaching lab's ceiling on 24 GiB
MAX_CLASSES = 1000  # as many as the model accepts (ImageNet's 1,000)
MIN_PER_CLASS = 5  # fewer leaves nothing for validation and test, and nothing to learn from
SHOWN_SKIPPED = 3  # how many skipped names a message lists
IGNORED_NAMES = ("__MACOSX", "Thumbs.db", "desktop.ini")  # what zip tools and file managers leave behind
DECODE_THREADS = 4  # Pillow releases the GIL while decoding: threads use every core without processes

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Listing:
    """The images a folder holds, found without decoding any: paths relative to ``root``."""

    root: Path
    classes: list[str]
    files: list[tuple[str, int, bool, int, int]]  # relative path, label, is_test, size, mtime_ns
    skipped: list[tuple[str, str]] = field(default_factory=list)  # relative path, why
    split: bool = False  # True when the folder came as train/ and test/


@dataclass(frozen=True, eq=False)
class FolderImages:
    """Decoded images: uint8 (N, C, size, size), labels int64, which are test images (None: no test/)."""

    images: np.ndarray
    labels: np.ndarray
    is_test: np.ndarray | None
    classes: list[str]
    skipped: list[tuple[str, str]]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_NAMES


def _subfolders(folder: Path) -> list[Path]:
    """Real (not symlinked) visible subfolders, sorted by name."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as err:
        raise DatasetNotFound(f"cannot read the folder {folder}: {err.strerror}") from None
    return [Path(e.path) for e in entries if not _hidden(e.name) and e.is_dir(follow_symlinks=False)]


def data_root_of(folder: Path) -> Path:
    """The folder that holds the class folders: a lone wrapping folder (``myzip/pets/cats``) is stepped into."""
    while True:
        subs = _subfolders(folder)
        loose = [e for e in os.scandir(folder) if not _hidden(e.name) and not e.is_dir(follow_symlinks=False)]
        split = any(s.name.lower() in ("train", "test") for s in subs)
        if len(subs) == 1 and not loose and not split and _subfolders(subs[0]):
            folder = subs[0]
        else:
            return folder


DIGIT_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}


def natural_key(name: str) -> tuple[object, ...]:
    """Sort key for class names as a person orders them: "zero"…"nine" as the digits they name, and numbers
    inside names by value (class2 before class10); everything else alphabetically, ignoring case."""
    word = name.strip().lower()
    if word in DIGIT_WORDS:
        return (0, DIGIT_WORDS[word])
    parts = re.split(r"(\d+)", word)
    return (1, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p), name)


def class_order(found: list[str], order: list[str] | None = None) -> list[str]:
    """The classes in ``order`` (a saved or chosen order; names not found are left out), the rest after them
    in their natural order."""
    first = [c for c in order or [] if c in found]
    return first + sorted((c for c in found if c not in first), key=natural_key)


def list_images(
    folder: str | os.PathLike[str], max_images: int = MAX_IMAGES, order: list[str] | None = None
) -> Listing:
    """Find every class folder and image file; refuses a folder with no or one class, or too many files.

    Classes come in ``order`` when given (a dataset's saved order), else in their natural order. A folder that
    changes while it is read (a file vanishes, a folder cannot be opened) is one line."""
    try:
        return _list_images(Path(folder), max_images, order)
    except CnnLabError:
        raise
    except OSError as err:
        raise storage_error(err, "reading the folder") from None  # the error's path says where


def _list_images(folder: Path, max_images: int, order: list[str] | None) -> Listing:
    if not folder.is_dir():
        raise DatasetNotFound(f"{folder} is not a folder")
    root = data_root_of(folder)
    subs = {s.name.lower(): s for s in _subfolders(root)}
    parts = [(subs["train"], False)] + ([(subs["test"], True)] if "test" in subs else []) if "train" in subs else []
    class_dirs = _subfolders(parts[0][0]) if parts else _subfolders(root)
    # names from the user's files: shown, never obeyed
    classes = class_order([escape_controls(d.name) for d in class_dirs], order)
    _check_classes(classes, root)
    files: list[tuple[str, int, bool, int, int]] = []
    skipped: list[tuple[str, str]] = []
    for top, is_test in parts or [(root, False)]:
        for entry in os.scandir(top):  # loose files beside the class folders belong to no class
            if not _hidden(entry.name) and not entry.is_dir(follow_symlinks=False) and top == root:
                skipped.append((entry.name, "not inside a class folder"))
        for class_dir in _subfolders(top):
            if escape_controls(class_dir.name) not in classes:
                raise BadDataset(
                    f"{class_dir.relative_to(root)} is a class that train/ does not have; "
                    "test/ must use the class folder names of train/"
                )
            label = classes.index(escape_controls(class_dir.name))
            _walk(class_dir, root, label, is_test, files, skipped, max_images)
    return Listing(root, classes, files, escape_skipped(skipped), split=bool(parts))


def _check_classes(classes: list[str], root: Path) -> None:
    if not classes:
        raise BadDataset(
            f"no class folders in {root.name or root}: put each class's images in a folder named after the "
            "class (for example cats/ and dogs/)"
        )
    if len(classes) == 1:
        raise BadDataset(f"only one class ({classes[0]}): a classifier needs at least two class folders")
    if len(classes) > MAX_CLASSES:
        raise BadDataset(f"{len(classes):,} class folders; at most {MAX_CLASSES:,} classes are supported")


def _walk(
    class_dir: Path,
    root: Path,
    label: int,
    is_test: bool,
    files: list[tuple[str, int, bool, int, int]],
    skipped: list[tuple[str, str]],
    max_images: int,
) -> None:
    """Add a class folder's images (sub-folders included, symbolic links never followed)."""
    for here, dirs, names in os.walk(class_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        for name in sorted(names):
            if _hidden(name):
                continue
            path = Path(here) / name
            rel = str(path.relative_to(root))
            try:
                info = os.lstat(path)
            except OSError as err:  # it vanished since the folder was listed (a folder being written to)
                skipped.append((rel, f"could not be read ({err.strerror})"))
                continue
            if stat.S_ISLNK(info.st_mode):
                skipped.append((rel, "a symbolic link (not followed)"))
            elif not stat.S_ISREG(info.st_mode):
                skipped.append((rel, "not a regular file"))
            elif path.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append((rel, f"unsupported file type {path.suffix or '(none)'}"))
            elif len(files) >= max_images:
                raise BadDataset(
                    f"more than {max_images:,} images; this lab takes at most {max_images:,} — use a sample of them"
                )
            else:
                files.append((rel, label, is_test, info.st_size, info.st_mtime_ns))


def suggested_size(listing: Listing, sample: int = 50) -> int:
    """28 for small images (letters, icons: MNIST's size), else 32 (CIFAR's and LeNet-5's original input).

    Read from the headers of up to ``sample`` files, which costs milliseconds."""
    sides = []
    for rel, *_ in listing.files[:: max(1, len(listing.files) // sample)][:sample]:
        try:
            with Image.open(listing.root / rel) as im:
                sides.append(min(im.size))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
    return 28 if sides and float(np.median(sides)) <= 28 else 32


def decode(
    listing: Listing, size: int, channels: int | str = "auto", fit: str = "crop", progress: Progress | None = None
) -> FolderImages:
    """Decode, square and resize every listed image; unreadable ones are skipped and listed."""
    check_fit(fit)
    if channels not in ("auto", 1, 3):
        raise BadDataset(f"channels: expected 1, 3 or 'auto', got {channels!r}")
    pictures = np.zeros((len(listing.files), size, size, 3), np.uint8)
    ok = np.zeros(len(listing.files), bool)
    skipped = list(listing.skipped)

    def one(i: int) -> str | None:
        try:
            image = load_image(listing.root / listing.files[i][0], draft=size)
            pictures[i] = resize_square(image, size, fit)
            ok[i] = True
        except BadImage as err:
            return str(err)
        return None

    with ThreadPoolExecutor(min(DECODE_THREADS, os.cpu_count() or 1)) as pool:
        for i, why in enumerate(pool.map(one, range(len(listing.files)))):
            if why is not None:
                skipped.append((listing.files[i][0], why))
            if progress is not None and (i % 64 == 0 or i == len(listing.files) - 1):
                progress(i + 1, len(listing.files))
    return _checked(listing, pictures[ok], ok, channels, skipped)


def _checked(
    listing: Listing, pictures: np.ndarray, ok: np.ndarray, channels: int | str, skipped: list[tuple[str, str]]
) -> FolderImages:
    skipped = escape_skipped(skipped)  # file names from the user's folder: shown, never obeyed
    labels = np.array([f[1] for f in listing.files], np.int64)[ok]
    is_test = np.array([f[2] for f in listing.files], bool)[ok]
    if not len(labels):
        raise BadDataset(f"no readable images in {listing.root.name or listing.root}{skipped_note(skipped)}")
    counts = np.bincount(labels[~is_test], minlength=len(listing.classes))
    if counts.min() < MIN_PER_CLASS:
        small = int(counts.argmin())
        raise BadDataset(
            f"class {listing.classes[small]!r} has {counts[small]} training image(s); each class needs at least "
            f"{MIN_PER_CLASS}{skipped_note(skipped)}"
        )
    if isinstance(channels, str):  # "auto": decode lets no other string through
        channels = 1 if is_grey(pictures) else 3
    is_test = is_test if listing.split else None
    return FolderImages(to_channels(pictures, channels), labels, is_test, listing.classes, skipped)


def skipped_note(skipped: list[tuple[str, str]]) -> str:
    """'; skipped 2 file(s): a.png (not an image …), b.txt (unsupported …)' — empty when nothing was skipped."""
    if not skipped:
        return ""
    shown = ", ".join(f"{name} ({why})" for name, why in skipped[:SHOWN_SKIPPED])
    more = f" and {len(skipped) - SHOWN_SKIPPED:,} more" if len(skipped) > SHOWN_SKIPPED else ""
    return f"; skipped {len(skipped):,} file(s): {shown}{more}"
