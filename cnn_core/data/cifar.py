"""CIFAR-10 and CIFAR-100 from their binary version: plain bytes, so nothing is ever unpickled.

Each record is the label byte(s) then 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue, row by row of
a 32×32 image); CIFAR-100 records carry a coarse and a fine label. The class names are plain text files
beside the batches. A download (torchvision's downloader) is checked against the archive's published MD5
before it is extracted.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_core.errors import BadDataset, DatasetNotFound

PIXELS = 3 * 32 * 32
MAX_RECORDS = 60_000  # 50,000 training + 10,000 test images in either dataset


@dataclass(frozen=True)
class CifarFiles:
    folder: str  # what the archive extracts to
    train: tuple[str, ...]
    test: str
    names: str  # one class name per line
    label_bytes: int
    label_index: int  # which label byte is the class (CIFAR-100: the fine label)
    url: str
    md5: str  # published by the dataset's authors, https://www.cs.toronto.edu/~kriz/cifar.html


CIFAR = {
    "cifar10": CifarFiles(
        "cifar-10-batches-bin",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        "test_batch.bin",
        "batches.meta.txt",
        1,
        0,
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530",
    ),
    "cifar100": CifarFiles(
        "cifar-100-binary",
        ("train.bin",),
        "test.bin",
        "fine_label_names.txt",
        2,
        1,
        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        "03b5dce01913d631647c71ecec9e9cb8",
    ),
}
CIFAR_MEAN, CIFAR_STD = 0.4734, 0.2516  # over all pixels and channels of CIFAR-10's training set


def read_batch(path: Path, files: CifarFiles) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) from one binary batch file."""
    record = files.label_bytes + PIXELS
    try:
        size = path.stat().st_size
        if size == 0 or size % record or size // record > MAX_RECORDS:
            raise BadDataset(
                f"{path} is not a CIFAR binary batch: {size:,} bytes is not a whole number of {record:,}-byte records"
            )
        raw = np.fromfile(path, np.uint8).reshape(-1, record)
    except FileNotFoundError:
        raise DatasetNotFound(f"{path} does not exist") from None
    except OSError as err:
        raise DatasetNotFound(f"cannot read {path}: {err.strerror}") from None
    return raw[:, files.label_bytes :].reshape(-1, 3, 32, 32).copy(), raw[:, files.label_index].astype(np.int64)


def class_names(folder: Path, files: CifarFiles) -> list[str]:
    try:
        text = (folder / files.names).read_text(encoding="utf-8", errors="replace")[:100_000]
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def local_folder(name: str, root: Path) -> Path | None:
    folder = root / CIFAR[name].folder
    return folder if all((folder / f).is_file() for f in (*CIFAR[name].train, CIFAR[name].test)) else None


def load_cifar(
    name: str, root: Path, download: bool
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], list[str], str]:
    """(train_x, train_y, test_x, test_y), class names and where they came from."""
    files = CIFAR[name]
    folder = local_folder(name, root)
    if folder is None and download:
        _download(files, root)
        folder = local_folder(name, root)
    if folder is None:
        raise DatasetNotFound(unavailable(name, root))
    train = [read_batch(folder / f, files) for f in files.train]
    test_x, test_y = read_batch(folder / files.test, files)
    train_x, train_y = np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])
    classes = class_names(folder, files)
    if len(classes) <= int(max(train_y.max(), test_y.max())):
        classes = [str(c) for c in range(int(max(train_y.max(), test_y.max())) + 1)]
    return (train_x, train_y, test_x, test_y), classes, f"{name} binary batches in {folder}"


def _download(files: CifarFiles, root: Path) -> None:
    """Fetch and extract the archive; torchvision refuses it unless its MD5 matches. Offline: a quiet no-op."""
    from torchvision.datasets.utils import download_and_extract_archive  # lazily: only downloads need it

    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # an offline machine should fail fast, not hang
    try:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            download_and_extract_archive(files.url, str(root), md5=files.md5)
    except Exception:  # noqa: BLE001 - offline, a mirror error or a bad checksum: reported as "not found"
        pass
    finally:
        socket.setdefaulttimeout(old_timeout)


def unavailable(name: str, root: Path) -> str:
    return (
        f"{name} is not on this machine: download it once while online (`cnn-lab train --dataset {name} --epochs 1`)"
        f", or put the binary version's {CIFAR[name].folder}/ folder in {root}"
    )
