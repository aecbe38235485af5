"""Datasets held whole in memory as uint8 tensors, plus batched tensor augmentation.

No per-sample PIL work happens in the training path: a dataset is four tensors (images
N×C×H×W uint8, labels int64) that the trainer moves to its device once and slices.
Places tried for a name, in order: an explicit ``data_dir`` of IDX files; torchvision under a
local root (downloading when online); Debian's Fashion-MNIST; and, for ``mnist`` only, the
5,000-digit sample shipped in the package, so training works offline on a fresh machine.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnn_core.errors import DatasetNotFound

BUNDLED_DIR = Path(__file__).resolve().parent / "assets" / "mnist-5k"
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
SPLIT_SEED = 1234  # fixed, so every run of a dataset sees the same validation and test digits
BUNDLED_TEST_FRACTION = 0.2  # the bundled sample has no test set: hold out 1,000 stratified digits
_IDX_TYPES = {0x08: np.uint8}
_MAX_IDX_ITEMS = 2_000_000_000  # refuse absurd headers before allocating


@dataclass(frozen=True)
class Dataset:
    """A dataset's three splits as tensors: images uint8 (N, C, H, W), labels int64 (N,)."""

    name: str
    classes: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str  # where it came from, for the run record and the UI

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or not), the format MNIST and its cousins ship in."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            zero, dtype_code, ndim = struct.unpack(">HBB", fh.read(4))
            if zero != 0 or dtype_code not in _IDX_TYPES or not 1 <= ndim <= 4:
                raise DatasetNotFound(f"{os.fspath(path)} is not an IDX file of unsigned bytes")
            dims = struct.unpack(f">{ndim}I", fh.read(4 * ndim))
            count = int(np.prod(dims, dtype=np.int64))
            if count > _MAX_IDX_ITEMS:
                raise DatasetNotFound(f"{os.fspath(path)}: IDX header claims {count} values")
            data = np.frombuffer(fh.read(count), dtype=np.uint8)
    except (OSError, EOFError, struct.error) as err:
        raise DatasetNotFound(f"cannot read IDX file {os.fspath(path)}: {err}") from None
    if data.size != count:
        raise DatasetNotFound(f"{os.fspath(path)} is truncated: {data.size} of {count} values")
    return data.reshape(dims)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file (used to build the bundled sample)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as fh:
        fh.write(header + array.tobytes())  # mtime=0: the same digits give the same bytes


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx"), f"{stem.replace('-idx', '.idx')}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx_folder(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Train images/labels and, when present, test images/labels from the four standard IDX files."""
    folder = Path(folder)
    found = {
        stem: _find_idx(folder, stem)
        for stem in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    }
    if found["train-images-idx3-ubyte"] is None or found["train-labels-idx1-ubyte"] is None:
        raise DatasetNotFound(f"no train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] in {folder}")
    arrays = [read_idx(p) if p is not None else None for p in found.values()]
    has_test = arrays[2] is not None and arrays[3] is not None
    return arrays[0], arrays[1], arrays[2] if has_test else None, arrays[3] if has_test else None


def stratified_split(labels: np.ndarray, fraction: float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) with ``fraction`` of every class held out."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_held = int(round(len(idx) * fraction))
        held.append(idx[:n_held])
        kept.append(idx[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def _torchvision_arrays(name: str, root: Path, download: bool) -> tuple[np.ndarray, ...]:
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


def default_data_root() -> Path:
    return Path(os.environ.get("CNN_LAB_DATA", Path.home() / ".cache" / "cnn-lab" / "datasets"))


def _locate(name: str, data_dir: str | os.PathLike | None, root: Path, download: bool) -> tuple[tuple, str]:
    """Local copies first (no network, no torchvision import), then a download, then the bundled sample."""
    if data_dir is not None:
        return load_idx_folder(data_dir), f"IDX files in {os.fspath(data_dir)}"
    raw = root / TORCHVISION_CLASS[name] / "raw"  # where torchvision keeps what it downloaded
    local = [(raw, f"torchvision's {TORCHVISION_CLASS[name]} files in {raw}")]
    if name == "fashion-mnist":
        local.append((DEBIAN_FASHION_DIR, f"Debian's dataset-fashion-mnist in {DEBIAN_FASHION_DIR}"))
    tried = []
    for folder, label in local:
        try:
            arrays = load_idx_folder(folder)
            if arrays[2] is not None:
                return arrays, label
            tried.append(f"{folder} (no test files)")
        except DatasetNotFound:
            tried.append(f"{folder}")
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


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    download: bool = True,
) -> Dataset:
    """Load a dataset by name (or from an IDX folder) with stratified validation (and test) splits."""
    if data_dir is None and name not in DATASETS:
        raise DatasetNotFound(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or pass --data-dir")
    root = Path(root) if root is not None else default_data_root()
    (train_x, train_y, test_x, test_y), source = _locate(name, data_dir, root, download)
    if len(train_x) != len(train_y):
        raise DatasetNotFound(f"{source}: {len(train_x)} images but {len(train_y)} labels")
    if test_x is None:  # no official test set: hold a stratified part out, always the same one
        kept, held = stratified_split(train_y, BUNDLED_TEST_FRACTION)
        test_x, test_y, train_x, train_y = train_x[held], train_y[held], train_x[kept], train_y[kept]
        source += f"; test = {len(held):,} held-out digits"
    kept, held = stratified_split(train_y, val_fraction)
    tensors = [
        _as_images(train_x[kept]),
        _as_labels(train_y[kept]),
        _as_images(train_x[held]),
        _as_labels(train_y[held]),
        _as_images(test_x),
        _as_labels(test_y),
    ]
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    classes = CLASS_NAMES.get(name, [str(c) for c in range(n_classes)])[: max(n_classes, 10)]
    return Dataset(name, classes, *tensors, source=source)


def _as_images(array: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(array, dtype=np.uint8))  # a writable copy
    if tensor.ndim == 3:  # (N, H, W) grey
        tensor = tensor.unsqueeze(1)
    elif tensor.ndim == 4 and tensor.shape[-1] in (1, 3) and tensor.shape[1] not in (1, 3):
        tensor = tensor.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)
    return tensor


def _as_labels(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.int64))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [0, 1], the model's input scale."""
    return images.float().div_(255.0)


def augment(
    images: torch.Tensor,
    generator: torch.Generator,
    max_rotate: float = 10.0,
    max_shift: float = 0.1,
    max_scale: float = 0.1,
) -> torch.Tensor:
    """Random small rotations, shifts and scaling of a whole float batch at once (one affine grid)."""
    n = images.shape[0]
    dev = images.device

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator, device=generator.device) * 2 - 1).to(dev) * limit

    angle = uniform(max_rotate) * (torch.pi / 180)
    scale = 1 + uniform(max_scale)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, uniform(max_shift) * 2], 1), torch.stack([sin, cos, uniform(max_shift) * 2], 1)], 1
    )
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
