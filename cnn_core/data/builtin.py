"""The MNIST family by name (mnist, fashion-mnist, kmnist): a local copy, a torchvision download, or the sample.

Places tried, in order: torchvision's files under the data root; Debian's Fashion-MNIST; a download when
online; and, for ``mnist`` only, the 5,000-digit sample shipped in the package, so training works offline on
a fresh machine.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from cnn_core.data.idx import IDX_STEMS, IdxArrays, find_idx, load_idx_folder
from cnn_core.errors import BadDataset, DatasetNotFound
from cnn_core.settings import data_root

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "mnist-5k"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("mnist", "fashion-mnist", "kmnist")
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


def _torchvision_arrays(name: str, root: Path, download: bool) -> IdxArrays:
    import torchvision.datasets as tvd  # imported lazily: only this path needs torchvision

    cls = getattr(tvd, TORCHVISION_CLASS[name])
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # an offline machine should fail fast, not hang on a mirror
    try:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            train = cls(str(root), train=True, download=download)
            test = cls(str(root), train=False, download=download)
    finally:
        socket.setdefaulttimeout(old_timeout)
    return train.data.numpy(), train.targets.numpy(), test.data.numpy(), test.targets.numpy()


def _local_folders(name: str, root: Path) -> list[tuple[Path, str]]:
    raw = root / TORCHVISION_CLASS[name] / "raw"  # where torchvision keeps what it downloaded
    local = [(raw, f"torchvision's {TORCHVISION_CLASS[name]} files in {raw}")]
    if name == "fashion-mnist":
        local.append((DEBIAN_FASHION_DIR, f"Debian's dataset-fashion-mnist in {DEBIAN_FASHION_DIR}"))
    return local


def unavailable_reason(name: str, root: str | os.PathLike[str] | None = None) -> str | None:
    """None when ``name`` can be loaded here without a download (a local copy, or MNIST's bundled sample);
    otherwise one line saying that it is missing and how to get it. Only looks for the files: cheap."""
    if name == "mnist":
        return None
    root = Path(root) if root is not None else data_root()
    if any(all(find_idx(folder, stem) for stem in IDX_STEMS) for folder, _ in _local_folders(name, root)):
        return None
    hint = "; or apt-get install dataset-fashion-mnist" if name == "fashion-mnist" else ""
    return (
        f"{name} is not on this machine: download it once while online with `cnn-lab train --dataset {name} "
        f"--epochs 1` (torchvision saves it in {root}){hint}"
    )


def locate(name: str, root: Path, download: bool) -> tuple[IdxArrays, str]:
    """Local copies first (no network, no torchvision import), then a download, then the bundled sample."""
    tried = []
    for folder, label in _local_folders(name, root):
        try:
            arrays = load_idx_folder(folder)
            if arrays[2] is not None:
                return arrays, label
            tried.append(f"{folder} (no test files)")
        except DatasetNotFound:
            tried.append(f"{folder}")
        except BadDataset as err:  # a damaged local copy: say why, then try a fresh download
            tried.append(f"{folder} ({err})")
    if download:
        try:
            return _torchvision_arrays(name, root, True), f"torchvision {TORCHVISION_CLASS[name]} downloaded to {root}"
        except Exception as err:  # torchvision raises RuntimeError, URLError, OSError...
            first = str(err).splitlines()[0][:80] if str(err) else type(err).__name__
            tried.append(f"a torchvision download to {root} ({first})")
    if name == "mnist":
        return load_idx_folder(BUNDLED_DIR), "the bundled 5,000-digit MNIST sample"
    hint = " or apt-get install dataset-fashion-mnist" if name == "fashion-mnist" else ""
    raise DatasetNotFound(
        f"dataset {name!r} not found; tried: {'; '.join(tried)}. Get it online once (torchvision downloads it "
        f"to {root}){hint}, or pass --data-dir with the four IDX files"
    )
