"""Datasets held whole in memory as uint8 tensors, from wherever they come.

Sources, one module each: the MNIST family by name (``builtin``: a local copy, a torchvision download or the
bundled 5,000-digit sample), a folder of IDX files (``idx``), CIFAR-10/100's binary batches (``cifar``), a
folder of class folders given by path (``folders``, decoded once and cached by ``cache``), and the user's
named datasets (``library``, filled from a folder or a zip unpacked by ``archive``). ``load_dataset`` turns
any of them into a ``Dataset`` with the same stratified validation (and, when missing, test) split, and
``adapt_model`` makes a network's input and output follow the data.
"""

# Lazy (PEP 562): ``cnn_core.data.idx`` and the other sources import without torch, so a command can read its
# IDX files on a thread while torch is still importing (``cnn-lab train --data-dir``); the names below load
# ``cnn_core.data.load`` (and torch) on first use.
from __future__ import annotations

from typing import TYPE_CHECKING

from cnn_core import lazy_exports

if TYPE_CHECKING:
    from cnn_core.data.load import (
        BUNDLED_DIR,
        CLASS_NAMES,
        DATASETS,
        DEBIAN_FASHION_DIR,
        FOLDER,
        IDX_STEMS,
        LENET5_ORIGINAL_CONV,
        MAX_IDX_BYTES,
        MIN_TRAIN_IMAGES,
        PUBLIC,
        SPLIT_SEED,
        TEST_FRACTION,
        TORCHVISION_CLASS,
        Dataset,
        DatasetSpec,
        Progress,
        adapt_model,
        as_images,
        as_labels,
        augment,
        check_fits,
        check_trainable,
        dataset_names,
        dataset_spec,
        default_data_root,
        has_idx_files,
        list_images,
        load_dataset,
        load_idx_folder,
        load_image_folder,
        read_idx,
        stratified_split,
        suggested_size,
        to_float,
        unavailable_reason,
        write_idx,
    )

__all__ = [
    "BUNDLED_DIR",
    "CLASS_NAMES",
    "DATASETS",
    "DEBIAN_FASHION_DIR",
    "Dataset",
    "DatasetSpec",
    "FOLDER",
    "IDX_STEMS",
    "LENET5_ORIGINAL_CONV",
    "MAX_IDX_BYTES",
    "MIN_TRAIN_IMAGES",
    "PUBLIC",
    "Progress",
    "SPLIT_SEED",
    "TEST_FRACTION",
    "TORCHVISION_CLASS",
    "adapt_model",
    "as_images",
    "as_labels",
    "augment",
    "check_fits",
    "check_trainable",
    "dataset_names",
    "dataset_spec",
    "default_data_root",
    "has_idx_files",
    "list_images",
    "load_dataset",
    "load_idx_folder",
    "load_image_folder",
    "read_idx",
    "stratified_split",
    "suggested_size",
    "to_float",
    "unavailable_reason",
    "write_idx",
]

__getattr__ = lazy_exports(__name__, "cnn_core.data.load", __all__)
