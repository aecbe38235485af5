"""Datasets load offline from what ships, split stratified, and fail with the places tried."""

import gzip

import numpy as np
import pytest
import torch

from cnn_core.data import augment, load_dataset, read_idx, stratified_split, write_idx
from cnn_core.errors import DatasetNotFound
from tests.conftest import OFFICIAL_MNIST


def test_mnist_falls_back_to_the_bundled_sample_offline(bundled):
    assert "bundled" in bundled.source
    assert bundled.train_x.dtype == torch.uint8 and bundled.train_x.shape[1:] == (1, 28, 28)
    total = len(bundled.train_y) + len(bundled.val_y) + len(bundled.test_y)
    assert total == 5000 and len(bundled.test_y) == 1000
    # stratified: every class has the same number of held-out test digits
    assert torch.bincount(bundled.test_y).tolist() == [100] * 10


def test_splits_are_disjoint_and_stable():
    labels = np.repeat(np.arange(10), 50)
    kept, held = stratified_split(labels, 0.2)
    assert len(set(kept) & set(held)) == 0 and len(kept) + len(held) == 500
    again = stratified_split(labels, 0.2)
    assert (again[1] == held).all()


def test_idx_folder_with_plain_and_gzipped_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (40, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 4).astype(np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
        gzip.decompress((tmp_path / "train-images-idx3-ubyte.gz").read_bytes())
    )
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(
        gzip.decompress((tmp_path / "train-labels-idx1-ubyte.gz").read_bytes())
    )
    data = load_dataset(data_dir=tmp_path, val_fraction=0.1)
    assert len(data.test_y) == 40 and len(data.train_y) + len(data.val_y) == 40
    assert (read_idx(tmp_path / "t10k-images-idx3-ubyte") == images).all()


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((10, 28, 28), np.uint8))
    raw = gzip.decompress((tmp_path / "x.gz").read_bytes())
    (tmp_path / "x").write_bytes(raw[:500])
    with pytest.raises(DatasetNotFound, match="truncated"):
        read_idx(tmp_path / "x")


def test_missing_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFound, match="kmnist.*tried.*torchvision") as err:
        load_dataset("kmnist", root=tmp_path, download=False)
    assert "--data-dir" in str(err.value)
    with pytest.raises(DatasetNotFound, match="no train-images"):
        load_dataset(data_dir=tmp_path)
    with pytest.raises(DatasetNotFound, match="unknown dataset"):
        load_dataset("cifar-1000")


@pytest.mark.skipif(not OFFICIAL_MNIST.is_dir(), reason="needs ../shared")
def test_official_test_set_is_read_from_shared():
    data = load_dataset(data_dir=OFFICIAL_MNIST)
    assert len(data.test_y) == 10_000 and len(data.train_y) + len(data.val_y) == 5000


def test_augment_keeps_shape_and_range_and_is_seeded():
    x = torch.rand(16, 1, 28, 28)
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
