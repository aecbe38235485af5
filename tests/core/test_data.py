"""Datasets load offline from what ships, split stratified, fail with the places tried, and must fit the model."""

import gzip
import struct
import tracemalloc
import zlib
from dataclasses import replace

import numpy as np
import pytest
import torch

from cnn_core.config import ModelConfig
from cnn_core.data import (
    MAX_IDX_BYTES,
    as_images,
    as_labels,
    augment,
    check_fits,
    load_dataset,
    load_idx_folder,
    read_idx,
    stratified_split,
    write_idx,
)
from cnn_core.errors import BadDataset, DatasetNotFound
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
    with pytest.raises(BadDataset, match="truncated"):
        read_idx(tmp_path / "x")


def test_missing_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFound, match="kmnist.*tried.*torchvision") as err:
        load_dataset("kmnist", root=tmp_path, download=False)
    assert "--data-dir" in str(err.value)
    with pytest.raises(DatasetNotFound, match="no train-images.*and no class folders"):
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


def test_augment_draws_its_numbers_in_one_call_so_they_reach_a_gpu_in_one_copy():
    generator, reference = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    augment(torch.rand(7, 3, 32, 32), generator)
    torch.rand(4 * 7, generator=reference)  # angle, scale, x and y shift for each of the 7 images
    assert torch.equal(generator.get_state(), reference.get_state())


def _idx_bytes(array: np.ndarray, dtype_code: int = 0x08) -> bytes:
    header = struct.pack(">HBB", 0, dtype_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def _good_gz(tmp_path) -> bytes:
    write_idx(tmp_path / "good.gz", np.arange(10 * 28 * 28, dtype=np.uint8).reshape(10, 28, 28))
    return (tmp_path / "good.gz").read_bytes()


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 16]) + data[middle + 16 :]


LABELS = np.arange(10, dtype=np.uint8)
BROKEN_IDX = {  # file name -> (its bytes given a tmp folder, what the message says)
    "corrupt.gz": (lambda tmp: _flip_middle(_good_gz(tmp)), "damaged or truncated gzip"),
    "not-gzip.gz": (lambda tmp: b"this is plain text, not gzip", "damaged or truncated gzip"),
    "cut.gz": (lambda tmp: _good_gz(tmp)[:-200], "damaged or truncated gzip"),
    "truncated": (lambda tmp: _idx_bytes(LABELS)[:-3], "truncated: 7 of 10 values"),
    "header-only": (lambda tmp: _idx_bytes(LABELS)[:6], "truncated inside its header"),
    "tiny": (lambda tmp: b"\x00\x00", "too short"),
    "trailing": (lambda tmp: _idx_bytes(LABELS) + b"extra", "more data than its header declares"),
    "zero-items": (lambda tmp: _idx_bytes(np.zeros((0, 28, 28), np.uint8)), "holds no items"),
    "float-type": (lambda tmp: _idx_bytes(LABELS, dtype_code=0x0D), "data type 0x0d is not supported"),
    "bad-magic": (lambda tmp: b"\x12\x34" + _idx_bytes(LABELS)[2:], "not an IDX file"),
    "huge-header": (lambda tmp: struct.pack(">HBBIII", 0, 8, 3, 2**31, 28, 28), "promises"),
}


@pytest.mark.parametrize("name", BROKEN_IDX)
def test_every_malformed_idx_file_is_one_line_naming_it(tmp_path, name):
    make, message = BROKEN_IDX[name]
    path = tmp_path / name
    path.write_bytes(make(tmp_path))
    with pytest.raises(BadDataset, match=message) as err:
        read_idx(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_missing_idx_file_is_not_found_not_malformed(tmp_path):
    with pytest.raises(DatasetNotFound, match="does not exist") as err:
        read_idx(tmp_path / "gone.gz")
    assert str(tmp_path / "gone.gz") in str(err.value)


def test_a_gzip_bomb_is_refused_after_reading_what_its_header_promises(tmp_path):
    # 10 labels promised, 200 MB of zeros behind them: about 200 KB on disk
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    chunks = [packer.compress(_idx_bytes(LABELS))]
    zeros = bytes(1 << 20)
    chunks += [packer.compress(zeros) for _ in range(200)] + [packer.flush()]
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(b"".join(chunks))
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(BadDataset, match="more data than its header declares") as err:
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20 and str(bomb) in str(err.value)


def test_the_promised_size_is_bounded_before_anything_is_allocated(tmp_path):
    side = int((MAX_IDX_BYTES // 2) ** 0.5) + 1  # 2 × side² is just over the limit
    path = tmp_path / "big"
    path.write_bytes(struct.pack(">HBBIII", 0, 8, 3, 2, side, side))
    with pytest.raises(BadDataset, match="promises"):
        read_idx(path)


def _idx_folder(tmp_path, images: np.ndarray, labels: np.ndarray):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    return tmp_path


@pytest.mark.parametrize(
    "images, labels, message, culprit",
    [
        (np.zeros((10, 28, 28)), np.zeros((10, 2)), "labels must be 1-D", "train-labels"),
        (np.zeros((10, 784)), np.zeros(10), "images must be 3-D", "train-images"),
        (np.zeros((10, 28, 28)), np.zeros(9), "10 images but .* 9 labels", "train-images"),
    ],
)
def test_idx_files_of_the_wrong_shape_or_count_are_refused(tmp_path, images, labels, message, culprit):
    with pytest.raises(BadDataset, match=message) as err:
        load_idx_folder(_idx_folder(tmp_path, images, labels))
    assert "\n" not in str(err.value) and str(tmp_path / culprit) in str(err.value)


def test_test_files_are_checked_like_training_files(tmp_path):
    _idx_folder(tmp_path, np.zeros((10, 28, 28)), LABELS)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", LABELS)
    with pytest.raises(BadDataset, match="5 images but .*t10k-labels.* 10 labels"):
        load_dataset(data_dir=tmp_path)


def test_a_damaged_local_copy_is_named_among_the_places_tried(tmp_path):
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetNotFound, match="damaged or truncated gzip"):
        load_dataset("kmnist", root=tmp_path, download=False)


def _with_images(data, height: int, width: int, channels: int = 1):
    shape = (height, width)
    return replace(
        data,
        train_x=torch.zeros(4, channels, *shape, dtype=torch.uint8),
        val_x=torch.zeros(2, channels, *shape, dtype=torch.uint8),
        test_x=torch.zeros(2, channels, *shape, dtype=torch.uint8),
    )


def test_a_dataset_that_fits_the_model_passes(small_data):
    check_fits(small_data, ModelConfig())


@pytest.mark.parametrize(
    "size, message",
    [
        ((32, 32, 1), "dataset 32×32×1 does not match the model's input 28×28×1"),
        ((28, 28, 3), "dataset 28×28×3 does not match the model's input 28×28×1"),
    ],
)
def test_images_of_another_size_or_depth_do_not_fit(small_data, size, message):
    with pytest.raises(BadDataset, match=f"^{message}$"):
        check_fits(_with_images(small_data, *size), ModelConfig())


def test_a_test_split_of_another_size_does_not_fit(small_data):
    odd = replace(small_data, test_x=torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(BadDataset, match="32×32×1"):
        check_fits(odd, ModelConfig())


@pytest.mark.parametrize("split, label", [("train_y", 255), ("val_y", 10), ("test_y", -1)])
def test_labels_outside_the_models_classes_do_not_fit(small_data, split, label):
    labels = getattr(small_data, split).clone()
    labels[0] = label
    with pytest.raises(BadDataset, match=f"^label {label} is outside the model's 10 classes$"):
        check_fits(replace(small_data, **{split: labels}), ModelConfig())


def test_public_converters_give_the_models_layout():
    images = as_images(np.zeros((3, 28, 28, 1), np.uint8))
    assert images.shape == (3, 1, 28, 28) and images.dtype == torch.uint8
    assert as_labels(np.array([1, 2], np.uint8)).dtype == torch.int64


def test_a_gzip_file_of_several_members_reads_as_gzip_reads_it(tmp_path):
    images = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4)
    whole = _idx_bytes(images)
    path = tmp_path / "members.gz"
    path.write_bytes(gzip.compress(whole[:50]) + gzip.compress(whole[50:]))  # `cat a.gz b.gz` makes such files
    np.testing.assert_array_equal(read_idx(path), images)
    assert gzip.decompress(path.read_bytes()) == whole


def test_a_prefetched_folder_gives_the_same_arrays_once_and_its_errors_when_loaded(tmp_path):
    from cnn_core.data.idx import _prefetched, prefetch_idx_folder

    rng = np.random.default_rng(0)
    for stem, array in (
        ("train-images-idx3-ubyte", rng.integers(0, 256, (30, 8, 8), dtype=np.uint8)),
        ("train-labels-idx1-ubyte", rng.integers(0, 10, 30, dtype=np.uint8)),
    ):
        write_idx(tmp_path / f"{stem}.gz", array)
    direct = load_idx_folder(tmp_path)
    prefetch_idx_folder(tmp_path)
    assert len(_prefetched) == 1
    for got, want in zip(load_idx_folder(tmp_path), direct, strict=True):
        assert (got is None and want is None) or np.array_equal(got, want)
    assert not _prefetched  # taken once; the next load reads the files again
    prefetch_idx_folder(tmp_path / "missing")  # no IDX files there: nothing is started
    assert not _prefetched
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    prefetch_idx_folder(tmp_path)
    with pytest.raises(BadDataset, match="damaged or truncated gzip"):  # raised where the data is loaded
        load_idx_folder(tmp_path)


def test_the_idx_reader_does_not_import_torch():
    """The train command reads its IDX files on a thread while torch is imported: the reader must not need it."""
    import subprocess
    import sys

    code = "import sys, cnn_core.data.idx, cnn_core.cli, cnn_core.config.budget; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_gzip_padding_and_files_bigger_than_one_inflate_call_read_as_gzip_reads_them(tmp_path):
    """NUL bytes after a member (some tools pad so) are skipped, as gzip does; a file of several 4 MB pieces of
    input and 16 MB pieces of output reads whole, and cut short anywhere it is refused."""
    labels = np.arange(10, dtype=np.uint8)
    padded = tmp_path / "padded.gz"
    padded.write_bytes(gzip.compress(_idx_bytes(labels)) + bytes(512))
    np.testing.assert_array_equal(read_idx(padded), labels)
    noise = np.random.default_rng(1).integers(0, 256, (30, 1000, 1000), dtype=np.uint8)  # 30 MB, incompressible
    big = tmp_path / "big.gz"
    big.write_bytes(gzip.compress(_idx_bytes(noise), compresslevel=1))
    assert big.stat().st_size > 3 * (4 << 20)
    np.testing.assert_array_equal(read_idx(big), noise)
    big.write_bytes(big.read_bytes()[: 9 << 20])
    with pytest.raises(BadDataset, match="damaged or truncated gzip"):
        read_idx(big)
