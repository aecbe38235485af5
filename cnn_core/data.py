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
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F

from cnn_core.config import ModelConfig
from cnn_core.errors import BadDataset, DatasetNotFound

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
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_TYPES = {0x08: np.uint8}  # the MNIST family is all unsigned bytes; other IDX types are refused
# EMNIST ByClass, the largest IDX set in use, is 550 MB of pixels; a header promising more than 1 GiB is a lie
# (or a gzip bomb), refused before anything is read or allocated.
MAX_IDX_BYTES = 1 << 30
_READ_CHUNK = 16 << 20


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
    # How an outside image is brought to this dataset's input: "digit" (MNIST's centre-of-mass recipe) or
    # "photo:crop" / "photo:pad" (resized to a square by centre-cropping or padding). Saved in checkpoints.
    preprocess: str = "digit"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or not), the format MNIST and its cousins ship in.

    Only what the header promises is read (plus one byte, to notice trailing data), so a small ``.gz`` that
    inflates to gigabytes is refused after reading no more than its header said. Every failure is one line
    naming the file: ``DatasetNotFound`` when it cannot be opened, ``BadDataset`` when it is malformed.
    """
    name = os.fspath(path)
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            dims = _read_idx_header(fh, name)
            data = _read_promised(fh, int(np.prod(dims, dtype=np.int64)), name)
    except FileNotFoundError:
        raise DatasetNotFound(f"IDX file {name} does not exist") from None
    except (gzip.BadGzipFile, zlib.error, EOFError) as err:  # EOFError: the gzip stream stops mid-way
        raise BadDataset(f"{name} is a damaged or truncated gzip file ({_one_line(err)})") from None
    except OSError as err:  # permissions, a folder, an I/O error: the file is there but cannot be read
        raise DatasetNotFound(f"cannot read IDX file {name}: {_one_line(err)}") from None
    return data.reshape(dims)


def _read_idx_header(fh: BinaryIO, name: str) -> tuple[int, ...]:
    """The dimensions an IDX header declares, after checking its magic number, type and promised size."""
    magic = fh.read(4)
    if len(magic) < 4:
        raise BadDataset(f"{name} is too short to be an IDX file ({len(magic)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or not 1 <= ndim <= 4:
        raise BadDataset(f"{name} is not an IDX file (magic number 0x{magic.hex()})")
    if dtype_code not in _IDX_TYPES:
        raise BadDataset(f"{name}: IDX data type 0x{dtype_code:02x} is not supported, only unsigned bytes (0x08)")
    raw = fh.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise BadDataset(f"{name} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", raw)
    size = int(np.prod(dims, dtype=np.int64))
    if size == 0:
        raise BadDataset(f"{name} holds no items (its header says shape {dims})")
    if size > MAX_IDX_BYTES:
        raise BadDataset(f"{name}: its header promises {size:,} bytes, more than the {MAX_IDX_BYTES:,} accepted")
    return dims


def _read_promised(fh: BinaryIO, size: int, name: str) -> np.ndarray:
    """Exactly ``size`` bytes, in chunks, then one more read to make sure nothing follows."""
    buffer = np.empty(size + 1, np.uint8)  # untouched pages cost no memory if the file turns out short
    view, got = memoryview(buffer), 0
    while got <= size:
        n = fh.readinto(view[got : min(got + _READ_CHUNK, size + 1)])
        if not n:
            break
        got += n
    if got < size:
        raise BadDataset(f"{name} is truncated: {got:,} of {size:,} values")
    if got > size:
        raise BadDataset(f"{name} holds more data than its header declares ({size:,} values)")
    return buffer[:size]


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


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
    paths = [_find_idx(folder, stem) for stem in IDX_STEMS]
    if paths[0] is None or paths[1] is None:
        raise DatasetNotFound(f"no {IDX_STEMS[0]}[.gz] and {IDX_STEMS[1]}[.gz] in {folder}")
    if paths[2] is None or paths[3] is None:
        paths[2] = paths[3] = None  # test images without labels (or labels without images) are no test set
    arrays = [read_idx(p) if p is not None else None for p in paths]
    for i in (0, 2):
        if paths[i] is not None:
            _check_idx_pair(paths[i], arrays[i], paths[i + 1], arrays[i + 1])
    return arrays[0], arrays[1], arrays[2], arrays[3]


def _check_idx_pair(images_path: Path, images: np.ndarray, labels_path: Path, labels: np.ndarray) -> None:
    """Images must be N×H×W and labels N, one label per image."""
    if images.ndim != 3:
        raise BadDataset(f"{images_path} holds {images.ndim}-D data; images must be 3-D (count × height × width)")
    if labels.ndim != 1:
        raise BadDataset(f"{labels_path} holds {labels.ndim}-D data; labels must be 1-D (one per image)")
    if len(images) != len(labels):
        raise BadDataset(f"{images_path} has {len(images):,} images but {labels_path} has {len(labels):,} labels")


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


def _local_folders(name: str, root: Path) -> list[tuple[Path, str]]:
    raw = root / TORCHVISION_CLASS[name] / "raw"  # where torchvision keeps what it downloaded
    local = [(raw, f"torchvision's {TORCHVISION_CLASS[name]} files in {raw}")]
    if name == "fashion-mnist":
        local.append((DEBIAN_FASHION_DIR, f"Debian's dataset-fashion-mnist in {DEBIAN_FASHION_DIR}"))
    return local


def unavailable_reason(name: str, root: str | os.PathLike | None = None) -> str | None:
    """None when ``name`` can be loaded here without a download (a local copy, or MNIST's bundled sample);
    otherwise one line saying that it is missing and how to get it. Only looks for the files: cheap."""
    if name == "mnist":
        return None
    root = Path(root) if root is not None else default_data_root()
    if any(all(_find_idx(folder, stem) for stem in IDX_STEMS) for folder, _ in _local_folders(name, root)):
        return None
    hint = "; or apt-get install dataset-fashion-mnist" if name == "fashion-mnist" else ""
    return (
        f"{name} is not on this machine: download it once while online with `cnn-lab train --dataset {name} "
        f"--epochs 1` (torchvision saves it in {root}){hint}"
    )


def _locate(name: str, data_dir: str | os.PathLike | None, root: Path, download: bool) -> tuple[tuple, str]:
    """Local copies first (no network, no torchvision import), then a download, then the bundled sample."""
    if data_dir is not None:
        return load_idx_folder(data_dir), f"IDX files in {os.fspath(data_dir)}"
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
        raise BadDataset(f"{source}: {len(train_x)} images but {len(train_y)} labels")
    if test_x is None:  # no official test set: hold a stratified part out, always the same one
        kept, held = stratified_split(train_y, BUNDLED_TEST_FRACTION)
        test_x, test_y, train_x, train_y = train_x[held], train_y[held], train_x[kept], train_y[kept]
        source += f"; test = {len(held):,} held-out digits"
    kept, held = stratified_split(train_y, val_fraction)
    tensors = [
        as_images(train_x[kept]),
        as_labels(train_y[kept]),
        as_images(train_x[held]),
        as_labels(train_y[held]),
        as_images(test_x),
        as_labels(test_y),
    ]
    if not len(train_x) or not len(test_x):
        raise BadDataset(
            f"{source}: {len(train_x):,} training and {len(test_x):,} test images after the split; a dataset needs "
            "at least one of each (a few hundred images to learn anything)"
        )
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    classes = CLASS_NAMES.get(name, [str(c) for c in range(n_classes)])[: max(n_classes, 10)]
    return Dataset(name, classes, *tensors, source=source)


def as_images(array: np.ndarray) -> torch.Tensor:
    """Images as the model takes them: a uint8 (N, C, H, W) tensor from (N, H, W) or (N, H, W, C) arrays."""
    tensor = torch.from_numpy(np.array(array, dtype=np.uint8))  # a writable copy
    if tensor.ndim == 3:  # (N, H, W) grey
        tensor = tensor.unsqueeze(1)
    elif tensor.ndim == 4 and tensor.shape[-1] in (1, 3) and tensor.shape[1] not in (1, 3):
        tensor = tensor.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)
    return tensor


def as_labels(array: np.ndarray) -> torch.Tensor:
    """Labels as the loss takes them: an int64 (N,) tensor."""
    return torch.from_numpy(np.array(array, dtype=np.int64))


def check_fits(data: Dataset, model: ModelConfig) -> None:
    """Refuse a dataset the model cannot learn: images of another size or depth, or labels past its classes."""
    want = f"{model.input_size}×{model.input_size}×{model.in_channels}"
    for images in (data.train_x, data.val_x, data.test_x):
        _, channels, height, width = images.shape
        if f"{height}×{width}×{channels}" != want:
            raise BadDataset(f"dataset {height}×{width}×{channels} does not match the model's input {want}")
    labels = torch.cat([data.train_y, data.val_y, data.test_y])
    if labels.numel():
        for label in (int(labels.min()), int(labels.max())):
            if not 0 <= label < model.num_classes:
                raise BadDataset(f"label {label} is outside the model's {model.num_classes} classes")


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
