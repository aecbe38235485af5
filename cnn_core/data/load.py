"""``load_dataset``: any source as a ``Dataset`` with the same stratified splits; ``adapt_model`` fits a network."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from cnn_core.config import LENET5_CONV, MNIST_MEAN, MNIST_STD, ModelConfig
from cnn_core.data import builtin, cifar, library
from cnn_core.data.builtin import BUNDLED_DIR, CLASS_NAMES, DATASETS, DEBIAN_FASHION_DIR, TORCHVISION_CLASS
from cnn_core.data.cache import load_image_folder
from cnn_core.data.folders import FolderImages, Progress, list_images, suggested_size
from cnn_core.data.idx import IDX_STEMS, MAX_IDX_BYTES, IdxArrays, has_idx_files, load_idx_folder, read_idx, write_idx
from cnn_core.data.tensors import SPLIT_SEED, as_images, as_labels, augment, stratified_split, to_float
from cnn_core.errors import BadDataset, DatasetNotFound
from cnn_core.people import Person
from cnn_core.settings import data_root

__all__ = [
    "BUNDLED_DIR", "CLASS_NAMES", "DATASETS", "DEBIAN_FASHION_DIR", "IDX_STEMS", "MAX_IDX_BYTES", "SPLIT_SEED",
    "TORCHVISION_CLASS", "Dataset", "DatasetSpec", "adapt_model", "as_images", "as_labels", "augment", "check_fits",
    "dataset_names", "dataset_spec", "default_data_root", "load_dataset", "load_idx_folder", "read_idx",
    "stratified_split", "to_float", "unavailable_reason", "write_idx", "Progress", "has_idx_files", "list_images",
    "load_image_folder", "suggested_size",
]  # fmt: skip

PUBLIC = DATASETS + tuple(cifar.CIFAR)  # every dataset known by name before the user adds any
FOLDER = "folder"  # a run's dataset when it came from --data-dir with class folders (IDX folders: "idx")
TEST_FRACTION = 0.2  # a dataset without a test set holds out a stratified fifth of its images
MIN_TRAIN_IMAGES = 10  # below this a run learns nothing and its test accuracy is noise (one image: 0 % or 100 %)
default_data_root = data_root


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
    mean: float = MNIST_MEAN  # the pixel statistics a model trained on it normalises with
    std: float = MNIST_STD

    @property
    def spec(self) -> DatasetSpec:
        _, channels, size, _ = self.train_x.shape
        return DatasetSpec(self.name, tuple(self.classes), channels, size, self.mean, self.std, self.preprocess)


@dataclass(frozen=True)
class DatasetSpec:
    """What a model must match to learn a dataset, known without loading its images."""

    name: str
    classes: tuple[str, ...]
    channels: int
    size: int
    mean: float = MNIST_MEAN
    std: float = MNIST_STD
    preprocess: str = "digit"


def dataset_names(visible_to: Person | None = None) -> list[str]:
    """Every dataset a picker offers: the public ones, then the named datasets (those a person may see)."""
    return [*PUBLIC, *(d.name for d in library.list_datasets(visible_to))]


def dataset_spec(name: str) -> DatasetSpec:
    """Channels, size, classes and normalisation of a dataset by name, from metadata only (cheap)."""
    if name in DATASETS:
        return DatasetSpec(name, tuple(CLASS_NAMES[name]), 1, 28)
    if name in cifar.CIFAR:
        folder = cifar.local_folder(name, data_root())
        names = cifar.class_names(folder, cifar.CIFAR[name]) if folder else []
        count = 10 if name == "cifar10" else 100
        classes = tuple(names) if len(names) == count else tuple(str(c) for c in range(count))
        return DatasetSpec(name, classes, 3, 32, cifar.CIFAR_MEAN, cifar.CIFAR_STD, "photo:crop")
    entry = library.get_dataset(name)
    fit = f"photo:{entry.fit}"
    return DatasetSpec(name, tuple(entry.classes), entry.channels, entry.size, entry.mean, entry.std, fit)


def unavailable_reason(name: str, root: str | os.PathLike[str] | None = None) -> str | None:
    """None when ``name`` can be loaded here without a download; otherwise one line on how to get it. Cheap."""
    root = Path(root) if root is not None else data_root()
    if name in DATASETS:
        return builtin.unavailable_reason(name, root)
    if name in cifar.CIFAR:
        return None if cifar.local_folder(name, root) else cifar.unavailable(name, root)
    try:
        library.get_dataset(name)
    except (DatasetNotFound, BadDataset) as err:
        return str(err)
    return None


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.1,
    download: bool = True,
    size: int | None = None,
    channels: int | str = "auto",
    progress: Progress | None = None,
) -> Dataset:
    """Load a dataset by name, or from ``data_dir`` (IDX files or class folders), with stratified splits.

    ``size`` and ``channels`` apply to a class-folder ``data_dir`` (default: a size suited to its images,
    grey or colour as the images are); named datasets keep the ones they were added with."""
    root = Path(root) if root is not None else data_root()
    arrays: IdxArrays
    spec: dict[str, Any]  # the dataset's own pixel statistics (mean, std), where it has them
    kind, spec = "digit", {}
    if data_dir is not None and has_idx_files(data_dir):
        arrays, classes, source = load_idx_folder(data_dir), None, f"IDX files in {os.fspath(data_dir)}"
        name = name if name in DATASETS else "idx"
    elif data_dir is not None:
        arrays, classes, source = _folder_arrays(data_dir, size, channels, progress)
        name, kind = FOLDER, "photo:crop"
    elif name in DATASETS:
        arrays, source = builtin.locate(name, root, download)
        classes = None
    elif name in cifar.CIFAR:
        arrays, classes, source = cifar.load_cifar(name, root, download)
        kind, spec = "photo:crop", {"mean": cifar.CIFAR_MEAN, "std": cifar.CIFAR_STD}
    else:
        entry = _named(name)
        arrays, classes, source = _library_arrays(entry, progress)
        kind, spec = f"photo:{entry.fit}", {"mean": entry.mean, "std": entry.std}
    data = _split(name, arrays, classes, source, val_fraction)
    return replace(data, preprocess=kind, **spec)


def _named(name: str) -> library.LibraryDataset:
    try:
        return library.get_dataset(name)
    except DatasetNotFound:
        raise DatasetNotFound(
            f"unknown dataset {name!r}; choose one of {', '.join(dataset_names())}, add it with "
            "`cnn-lab data add NAME FOLDER_OR_ZIP`, or pass --data-dir"
        ) from None


def _folder_arrays(
    folder: str | os.PathLike[str], size: int | None, channels: int | str, progress: Progress | None
) -> tuple[IdxArrays, list[str], str]:
    """Class folders given by path: decoded once, then cached under the data root by what they hold."""
    if Path(folder).is_dir() and not any(p.is_dir() for p in Path(folder).iterdir()):
        raise DatasetNotFound(
            f"no {IDX_STEMS[0]}[.gz] and {IDX_STEMS[1]}[.gz] in {os.fspath(folder)}, and no class folders of images"
        )
    listing = list_images(folder)  # walked once: for the suggested size and for the cache key
    size = size or suggested_size(listing)
    key = hashlib.sha256(os.fsencode(os.path.abspath(folder))).hexdigest()[:16]
    cache_dir = data_root() / "decoded" / key
    images, cached = load_image_folder(folder, size, channels, "crop", cache_dir, progress, listing)
    return _with_test(images), images.classes, f"class folders in {os.fspath(folder)}" + (" (cached)" * cached)


def _library_arrays(entry: library.LibraryDataset, progress: Progress | None) -> tuple[IdxArrays, list[str], str]:
    images = library.library_images(entry, progress)
    return _with_test(images), images.classes, f"dataset {entry.name} ({entry.source})"


def _with_test(images: FolderImages) -> IdxArrays:
    if images.is_test is None or not images.is_test.any():
        return images.images, images.labels, None, None
    train, test = ~images.is_test, images.is_test
    return images.images[train], images.labels[train], images.images[test], images.labels[test]


def _split(name: str, arrays: IdxArrays, classes: list[str] | None, source: str, val_fraction: float) -> Dataset:
    train_x, train_y, test_x, test_y = arrays
    if len(train_x) != len(train_y):
        raise BadDataset(f"{source}: {len(train_x)} images but {len(train_y)} labels")
    if test_x is None:  # no official test set: hold a stratified part out, always the same one
        kept, held = stratified_split(train_y, TEST_FRACTION)
        test_x, test_y, train_x, train_y = train_x[held], train_y[held], train_x[kept], train_y[kept]
        source += f"; test = {len(held):,} held-out images"
    test_y = cast(np.ndarray, test_y)  # there whenever test_x is: sources give both test arrays or neither
    if not len(train_x) or not len(test_x):
        raise BadDataset(
            f"{source}: {len(train_x):,} training and {len(test_x):,} test images after the split; a dataset needs "
            "at least one of each (a few hundred images to learn anything)"
        )
    kept, held = stratified_split(train_y, val_fraction)
    check_trainable(source, train_y[kept])
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    if classes is None:
        classes = CLASS_NAMES.get(name, [str(c) for c in range(n_classes)])[: max(n_classes, 10)]
    tensors = (as_images(train_x[kept]), as_labels(train_y[kept]), as_images(train_x[held]), as_labels(train_y[held]))
    return Dataset(name, list(classes), *tensors, as_images(test_x), as_labels(test_y), source=source)


def check_trainable(source: str, train_labels: torch.Tensor) -> None:
    """Refuse a training split too small to learn from: a run on it would "complete" at chance or at 0 %."""
    classes = len(set(train_labels.tolist()))
    if len(train_labels) < MIN_TRAIN_IMAGES or classes < 2:
        raise BadDataset(
            f"{source}: {len(train_labels):,} training image(s) of {classes} class(es) after the test and validation "
            f"splits; a dataset needs at least {MIN_TRAIN_IMAGES} of 2 or more classes (a few hundred to learn)"
        )


# LeCun et al. (1998): a 32×32 input and no padding in C1 (28×28 MNIST digits were padded to 32×32 instead);
# the article pads C1 by 2 because its input is 28×28. Both end in 16 maps of 5×5 before C3.
LENET5_ORIGINAL_CONV = (replace(LENET5_CONV[0], padding=0), *LENET5_CONV[1:])


def adapt_model(model: ModelConfig, spec: DatasetSpec, keep_conv: bool = False) -> ModelConfig:
    """The network with its input (channels, size, normalisation) and output (classes) taken from the data.

    Unless ``keep_conv``, the default LeNet-5 becomes LeCun's original for a 32×32 input (no padding in
    conv1). The Train page keeps its conv layers as its controls say, and sets conv1's padding itself."""
    conv = model.conv
    if not keep_conv and spec.size == 32 and conv == LENET5_CONV:
        conv = LENET5_ORIGINAL_CONV
    elif not keep_conv and spec.size != 32 and conv == LENET5_ORIGINAL_CONV:
        conv = LENET5_CONV
    return replace(
        model,
        in_channels=spec.channels,
        input_size=spec.size,
        num_classes=max(len(spec.classes), 2),
        conv=conv,
        input_mean=spec.mean,
        input_std=spec.std,
    )


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
