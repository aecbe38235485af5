"""Damaged and hostile IDX folders through ``cnn-lab train --data-dir DIR --epochs 1``: a non-zero exit, one
``error:`` line naming the file and what is wrong with it, no traceback, and nothing recorded."""

import gzip
import json
import struct
import zipfile

import numpy as np
import pytest

from cnn_core.data import IDX_STEMS, write_idx
from cnn_core.runs import RunStore
from tests.reliability.conftest import (
    STORE_FILES,
    changes,
    error_line,
    last_error,
    make_sandbox,
    run_folders,
    under,
    write_idx_folder,
)

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = (f"{stem}.gz" for stem in IDX_STEMS)
RNG = np.random.default_rng(9)
IMAGES = RNG.integers(0, 256, (100, 28, 28), dtype=np.uint8)
LABELS = np.arange(100, dtype=np.uint8) % 10


def idx_header(dtype_code: int, *dims: int) -> bytes:
    return struct.pack(">HBB", 0, dtype_code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def corrupt_gzip(folder):
    write_idx_folder(folder, IMAGES, LABELS)
    data = bytearray((folder / TRAIN_IMAGES).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 32] = bytes(b ^ 0xFF for b in data[middle : middle + 32])
    (folder / TRAIN_IMAGES).write_bytes(data)


def truncated_gzip(folder):
    write_idx_folder(folder, IMAGES, LABELS)
    data = (folder / TRAIN_IMAGES).read_bytes()
    (folder / TRAIN_IMAGES).write_bytes(data[: len(data) // 2])


def truncated_idx(folder):
    write_idx_folder(folder, IMAGES, LABELS)
    (folder / TRAIN_IMAGES).unlink()
    raw = idx_header(0x08, 100, 28, 28) + IMAGES.tobytes()
    (folder / IDX_STEMS[0]).write_bytes(raw[: len(raw) // 2])  # the uncompressed spelling, cut in half


def zero_items(folder):
    write_idx_folder(folder, np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))


def labels_2d(folder):
    write_idx_folder(folder, IMAGES, np.zeros((100, 2), np.uint8))


def mismatched_counts(folder):
    write_idx_folder(folder, IMAGES, LABELS[:50])


def gzip_bomb(folder):
    """64 KB of gzip whose header promises 100 digits (78,400 bytes) and then inflates to 64 MB."""
    write_idx_folder(folder, IMAGES, LABELS)
    with gzip.open(folder / TRAIN_IMAGES, "wb", compresslevel=9) as fh:
        fh.write(idx_header(0x08, 100, 28, 28))
        zeros = bytes(16 << 20)
        for _ in range(4):
            fh.write(zeros)
    assert (folder / TRAIN_IMAGES).stat().st_size < 128 << 10


def header_promises_terabytes(folder):
    write_idx_folder(folder, IMAGES, LABELS)
    (folder / TRAIN_IMAGES).write_bytes(gzip.compress(idx_header(0x08, 2**32 - 1, 28, 28)))


def trailing_data(folder):
    write_idx_folder(folder, IMAGES, LABELS)
    (folder / TRAIN_LABELS).write_bytes(gzip.compress(idx_header(0x08, 100) + LABELS.tobytes() + b"extra"))


def missing_files(folder):
    folder.mkdir(parents=True)


def images_32x32(folder):
    write_idx_folder(folder, RNG.integers(0, 256, (100, 32, 32), dtype=np.uint8), LABELS)


def label_255(folder):
    labels = LABELS.copy()
    labels[5] = 255
    write_idx_folder(folder, IMAGES, labels)


# (builder, what the error line says)
REFUSED = {
    "corrupt-gzip": (corrupt_gzip, f"{TRAIN_IMAGES} is a damaged or truncated gzip file (CRC check failed"),
    "truncated-gzip": (truncated_gzip, f"{TRAIN_IMAGES} is a damaged or truncated gzip file"),
    "truncated-idx": (truncated_idx, f"{IDX_STEMS[0]} is truncated: 39,192 of 78,400 values"),
    "zero-items": (zero_items, f"{TRAIN_IMAGES} holds no items (its header says shape (0, 28, 28))"),
    "labels-2d": (labels_2d, f"{TRAIN_LABELS} holds 2-D data; labels must be 1-D"),
    "mismatched-counts": (mismatched_counts, f"{TRAIN_IMAGES} has 100 images but"),
    "gzip-bomb": (gzip_bomb, f"{TRAIN_IMAGES} holds more data than its header declares (78,400 values)"),
    "header-promises-3TB": (header_promises_terabytes, "its header promises 3,367,254,359,280 bytes, more than"),
    "trailing-data": (trailing_data, f"{TRAIN_LABELS} holds more data than its header declares (100 values)"),
    "missing-files": (missing_files, f"no {IDX_STEMS[0]}[.gz] and {IDX_STEMS[1]}[.gz] in"),
}
# Folders the loader reads fine, refused only once the run is recorded (see the tests at the end).
MISFITS = {
    "images-32x32": (images_32x32, "dataset 32×32×1 does not match the model's input 28×28×1"),
    "label-255": (label_255, "label 255 is outside the model's 10 classes"),
}


def train_on(sandbox, folder, timeout=120):
    return sandbox.cli("train", "--data-dir", str(folder), "--epochs", "1", "--batch-size", "16", timeout=timeout)


@pytest.mark.parametrize("build, message", REFUSED.values(), ids=REFUSED.keys())
def test_a_damaged_idx_folder_is_refused_in_one_line_and_leaves_nothing(sandbox, build, message):
    folder = sandbox.root / "data"
    build(folder)
    before = sandbox.snapshot()
    out = train_on(sandbox, folder)
    assert out.returncode != 0
    assert message in error_line(out)
    after = sandbox.snapshot(under(*STORE_FILES))
    assert after == before, changes(before, after)
    assert run_folders(sandbox.runs) == []


def test_a_missing_data_dir_is_one_line(sandbox):
    out = train_on(sandbox, sandbox.root / "no-such-folder")
    assert out.returncode != 0
    assert "no-such-folder" in error_line(out)


@pytest.fixture(scope="module", params=list(MISFITS))
def misfit(request, tmp_path_factory):
    """One CLI run per misfit folder, shared by the two tests below (what works today, and what should)."""
    box = make_sandbox(tmp_path_factory.mktemp(request.param) / "box")
    build, message = MISFITS[request.param]
    build(box.root / "data")
    return box, train_on(box, box.root / "data"), message


def test_a_dataset_that_does_not_fit_the_model_fails_with_its_reason_and_no_traceback(misfit):
    """What happens today: the run is recorded, then fails at its first check with the right reason."""
    box, out, message = misfit
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {message}"], out.stderr
    runs = RunStore(box.runs).list() if box.runs.exists() else []
    assert all(run.status == "failed" and run.error == message for run in runs)


def test_a_dataset_that_does_not_fit_the_model_is_refused_before_a_run_is_recorded(misfit):
    box, out, message = misfit
    assert out.returncode == 2
    assert error_line(out) == f"error: {message}"
    assert run_folders(box.runs) == []


def test_a_dataset_too_small_to_split_is_refused_in_one_line(sandbox):
    folder = sandbox.root / "data"
    write_idx_folder(folder, IMAGES[:3], LABELS[:3])
    out = train_on(sandbox, folder)
    assert out.returncode != 0
    error_line(out)


def test_a_zip_made_from_inside_its_folder_is_accepted(sandbox, tmp_path):
    """A zip whose members are named ``./cats/0.png``: the ``.`` segments mean nothing and are dropped."""
    from tests.imagesets import make_image_folder

    folder = make_image_folder(tmp_path / "pets", per_class=12, classes=("red-disc", "blue-disc"))
    archive = tmp_path / "dot.zip"  # writestr keeps a name as given (ZipFile.write would normalise it)
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("./", b"")
        for path in sorted(folder.rglob("*.png")):
            out.writestr("./" + path.relative_to(folder).as_posix(), path.read_bytes())
        out.writestr("././/blue-disc/./extra.png", path.read_bytes())
    result = sandbox.cli("data", "add", "dotted", str(archive), "--json")
    assert result.returncode == 0, result.stderr[-1000:]
    summary = json.loads(result.stdout)
    assert (summary["classes"], summary["images"], summary["skipped"]) == (["blue-disc", "red-disc"], 25, [])


def test_a_zip_member_that_climbs_out_through_a_dot_segment_is_still_refused(sandbox, tmp_path):
    archive = tmp_path / "climb.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("./../evil/0.png", b"x")
    result = sandbox.cli("data", "add", "climb", str(archive))
    assert "points outside its folder" in last_error(result) and result.returncode == 2


@pytest.mark.parametrize("train, test", [(1, 1), (9, 3)])
def test_a_dataset_too_small_to_learn_from_is_refused_before_a_run_is_recorded(sandbox, tmp_path, bundled, train, test):
    """IDX files with their own test split, so nothing refuses them for want of a test part: 1 training image
    used to "complete" at 0.00 %."""
    images, labels = bundled.train_x[:, 0].numpy(), bundled.train_y.numpy()
    folder = write_idx_folder(tmp_path / "tiny", images[:train], labels[:train])
    write_idx(folder / f"{IDX_STEMS[2]}.gz", images[train : train + test])
    write_idx(folder / f"{IDX_STEMS[3]}.gz", labels[train : train + test])
    out = sandbox.cli("train", "--data-dir", str(folder), "--epochs", "1")
    assert out.returncode == 2
    assert "a dataset needs at least 10 of 2 or more classes" in error_line(out)
    assert run_folders(sandbox.runs) == []
