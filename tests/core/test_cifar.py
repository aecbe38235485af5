"""CIFAR-10/100 read from files in the real binary format (written here), never unpickled."""

import numpy as np
import pytest

from cnn_core.config import ModelConfig
from cnn_core.data import adapt_model, dataset_spec, load_dataset, unavailable_reason
from cnn_core.data.cifar import CIFAR, PIXELS
from cnn_core.errors import BadDataset, DatasetNotFound

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root, per_batch=20, seed=0):
    """Five training batches and a test batch of ``per_batch`` records: a label byte, then R, G and B planes."""
    rng = np.random.default_rng(seed)
    folder = root / CIFAR["cifar10"].folder
    folder.mkdir(parents=True)
    records = {}
    for name in (*CIFAR["cifar10"].train, CIFAR["cifar10"].test):
        labels = np.arange(per_batch, dtype=np.uint8) % 10
        pixels = rng.integers(0, 256, (per_batch, PIXELS), dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([labels[:, None], pixels], axis=1).tobytes())
        records[name] = (labels, pixels)
    (folder / "batches.meta.txt").write_text("\n".join(NAMES) + "\n\n")
    return records


def test_cifar10_binary_batches_load_with_their_class_names_and_colour_planes(tmp_path):
    records = write_cifar10(tmp_path)
    data = load_dataset("cifar10", root=tmp_path, download=False)
    assert data.classes == NAMES and data.preprocess == "photo:crop"
    assert tuple(data.test_x.shape) == (20, 3, 32, 32) and len(data.train_y) + len(data.val_y) == 100
    labels, pixels = records["test_batch.bin"]
    assert np.array_equal(data.test_y.numpy(), labels)
    first = data.test_x[0].numpy()
    assert np.array_equal(first[0].ravel(), pixels[0, :1024])  # red plane first, row by row
    assert np.array_equal(first[2].ravel(), pixels[0, 2048:])  # then green, then blue
    assert dataset_spec("cifar10").classes[0] in ("0", "airplane")  # the spec reads the default root


def test_cifar100_uses_the_fine_label(tmp_path):
    folder = tmp_path / CIFAR["cifar100"].folder
    folder.mkdir()
    coarse, fine = np.full(30, 7, np.uint8), np.arange(30, dtype=np.uint8) * 3
    for name in ("train.bin", "test.bin"):
        pixels = np.zeros((30, PIXELS), np.uint8)
        (folder / name).write_bytes(np.concatenate([coarse[:, None], fine[:, None], pixels], axis=1).tobytes())
    data = load_dataset("cifar100", root=tmp_path, download=False)
    assert sorted(set(data.test_y.tolist())) == list(range(0, 90, 3)) and len(data.classes) == 88


def test_a_truncated_batch_is_refused_in_one_line(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / CIFAR["cifar10"].folder / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(BadDataset, match="data_batch_3.bin is not a CIFAR binary batch"):
        load_dataset("cifar10", root=tmp_path, download=False)


def test_missing_cifar_says_how_to_get_it_and_the_model_follows_it(tmp_path):
    assert "cifar10 is not on this machine" in unavailable_reason("cifar10", tmp_path)
    with pytest.raises(DatasetNotFound, match="cifar-10-batches-bin"):
        load_dataset("cifar10", root=tmp_path, download=False)
    model = adapt_model(ModelConfig(), dataset_spec("cifar10"))
    assert (model.in_channels, model.input_size, model.num_classes, model.conv[0].padding) == (3, 32, 10, 0)
