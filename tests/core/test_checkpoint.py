"""A checkpoint is what it was: its weights' SHA-256 is checked, odd paths get a clear message, no temp file stays."""

import hashlib
import json
import os
import shutil
import signal
import stat
import struct
import tempfile
import time
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

import cnn_core.model.checkpoint as checkpoint
from cnn_core.config import ModelConfig
from cnn_core.errors import BadCheckpoint
from cnn_core.model import build_model
from cnn_core.model.checkpoint import (
    BUNDLED,
    HASH_KEY,
    atomic_write,
    bundled_checkpoints,
    load_checkpoint,
    remove_partial_writes,
    resolve_checkpoint,
    save_checkpoint,
    weights_sha256,
)
from cnn_core.settings import PROJECT_DIR


@contextmanager
def no_hang(seconds: int = 5):
    """Fail instead of hanging forever: opening a FIFO for reading waits for a writer."""

    def give_up(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _saved(tmp_path, name: str = "m.safetensors"):
    return save_checkpoint(tmp_path / name, build_model(seed=0), ModelConfig(), {"test_accuracy": 0.5})


def _header_length(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


def _metadata(data: bytes) -> dict:
    return json.loads(data[8 : 8 + _header_length(data)])["__metadata__"]


# --- the weights' SHA-256 ---


def test_the_hash_is_recorded_in_the_file_and_the_sidecar(tmp_path):
    model = build_model(seed=0)
    path = save_checkpoint(tmp_path / "m.safetensors", model, ModelConfig())
    digest = weights_sha256(model.state_dict())
    assert _metadata(path.read_bytes())[HASH_KEY] == digest
    assert json.loads(path.with_suffix(".json").read_text())[HASH_KEY] == digest
    assert load_checkpoint(path).metadata[HASH_KEY] == digest


def test_the_hash_is_defined_by_names_dtypes_shapes_and_little_endian_bytes():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([[3]], dtype=torch.int64)
    expected = hashlib.sha256(
        b"a float32 2\n" + np.array([1, 2], "<f4").tobytes() + b"b int64 1x1\n" + np.array([3], "<i8").tobytes()
    ).hexdigest()
    assert weights_sha256({"b": b, "a": a}) == weights_sha256({"a": a, "b": b}) == expected
    assert weights_sha256({"a": a.reshape(2, 1), "b": b}) != expected  # same bytes, another shape


@pytest.mark.parametrize("where", [-1, -4000, "first"])
def test_flipped_bytes_in_the_weights_are_refused_as_damage(tmp_path, where):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    index = 8 + _header_length(data) if where == "first" else where
    data[index] ^= 0x01  # one bit: still a finite float, a silently different model without the hash
    path.write_bytes(bytes(data))
    message = "m.safetensors: its weights do not match the SHA-256 recorded when it was saved: the file is damaged"
    with pytest.raises(BadCheckpoint, match=f"^{message}$"):
        load_checkpoint(path)
    with pytest.raises(BadCheckpoint, match="SHA-256"):
        load_checkpoint(bytes(data))


def test_a_checkpoint_saved_before_hashes_loads_as_before(tmp_path):
    data = _saved(tmp_path).read_bytes()
    metadata = {k: v for k, v in _metadata(data).items() if k != HASH_KEY}
    old = save_tensors(load_tensors(data), metadata=metadata)
    loaded = load_checkpoint(old)
    assert loaded.metadata["test_accuracy"] == 0.5 and HASH_KEY not in loaded.metadata


def test_the_bundled_checkpoints_record_the_hash_shipped_with_the_code_and_load_verified():
    from cnn_core.model.checkpoint import BUNDLED_SHA256

    for name in BUNDLED:
        assert _metadata(resolve_checkpoint(name).read_bytes())[HASH_KEY] == BUNDLED_SHA256[name]
        checkpoint = load_checkpoint(name)
        assert checkpoint.verified and checkpoint.config.conv[0].pool == name.rsplit("-", 1)[1]


# --- metadata parsed with bounds ---


def _with_header(header: str) -> bytes:
    raw = header.encode()
    return struct.pack("<Q", len(raw)) + raw


def test_a_deeply_nested_header_is_refused_before_parsing():
    with pytest.raises(BadCheckpoint, match="header nests 5001 levels deep"):
        load_checkpoint(_with_header('{"x": ' + "[" * 5000 + "]" * 5000 + "}"))


def test_a_deeply_nested_saved_config_is_refused(tmp_path):
    data = _saved(tmp_path).read_bytes()
    deep = {**_metadata(data), "config": "[" * 5000 + "]" * 5000}
    deep.pop(HASH_KEY)
    with pytest.raises(BadCheckpoint, match="saved config nests 5000 levels deep"):
        load_checkpoint(save_tensors(load_tensors(data), metadata=deep))


def test_a_header_that_is_not_json_is_one_line():
    with pytest.raises(BadCheckpoint, match="uploaded checkpoint's safetensors header is not valid JSON") as err:
        load_checkpoint(_with_header("{not json"))
    assert "\n" not in str(err.value)


def test_deep_json_in_an_extra_metadata_value_is_kept_as_text(tmp_path):
    data = _saved(tmp_path).read_bytes()
    metadata = {**_metadata(data), "notes": "[" * 5000 + "]" * 5000}
    assert load_checkpoint(save_tensors(load_tensors(data), metadata=metadata)).metadata["notes"].startswith("[[")


# --- paths that are not checkpoint files ---


def test_a_folder_is_not_a_checkpoint_file(tmp_path):
    for folder in (tmp_path / "plain", tmp_path / "looks.safetensors"):
        folder.mkdir()
        with pytest.raises(BadCheckpoint, match=f"^{folder} is a folder, not a checkpoint file$"):
            load_checkpoint(folder)


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    with no_hang(), pytest.raises(BadCheckpoint, match=f"^{fifo} is not a regular file$"):
        load_checkpoint(fifo)


def test_a_path_that_becomes_a_fifo_after_it_was_checked_does_not_hang(tmp_path, monkeypatch):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    monkeypatch.setattr(checkpoint, "resolve_checkpoint", lambda source: fifo)  # as if swapped in meanwhile
    with no_hang(), pytest.raises(BadCheckpoint, match="is not a regular file"):
        load_checkpoint("anything")


def test_a_symlink_loop_is_named(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    os.symlink(b, a)
    os.symlink(a, b)
    with pytest.raises(BadCheckpoint, match=f"^{a} is a symlink loop$"):
        load_checkpoint(a)


def test_a_symlink_to_a_checkpoint_loads(tmp_path):
    link = tmp_path / "link.safetensors"
    os.symlink(_saved(tmp_path), link)
    assert load_checkpoint(link).metadata["test_accuracy"] == 0.5


# --- atomic writes: the umask's mode, nothing left behind ---


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, mask, mode):
    with umask(mask):
        atomic_write(tmp_path / "f.json", b"{}")
        path = _saved(tmp_path)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == mode
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(path.with_suffix(".json").stat().st_mode) == mode


def _partial_write(folder, name: str, age_s: float) -> str:
    """A temp file named as atomic_write names them, as a killed process would leave it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    then = time.time() - age_s
    os.utime(tmp, (then, then))
    return tmp


def test_partial_writes_are_removed_and_named(tmp_path):
    epochs = tmp_path / "runs" / "abc" / "epochs"
    old = {_partial_write(epochs, "epoch_003.safetensors", 3600), _partial_write(tmp_path, "runs.json", 120)}
    fresh = _partial_write(epochs, "epoch_004.safetensors", 0)  # another process may be writing it right now
    keep = [epochs / "epoch_001.safetensors", tmp_path / ".hidden.tmp", tmp_path / "notes.abcdefgh.tmp"]
    for path in keep:
        path.write_bytes(b"x")
        os.utime(path, (0, 0))
    assert {str(p) for p in remove_partial_writes(tmp_path)} == old
    assert all(p.exists() for p in keep) and os.path.exists(fresh)
    assert not any(os.path.exists(p) for p in old)
    assert remove_partial_writes(tmp_path / "no-such-folder") == []


def test_partial_writes_are_never_counted_as_epoch_checkpoints(tmp_path):
    save_checkpoint(tmp_path / "epoch_001.safetensors", build_model(seed=0), ModelConfig())
    _partial_write(tmp_path, "epoch_002.safetensors", 3600)
    _partial_write(tmp_path, "epoch_002.safetensors", 0)
    # the glob RunStore.epoch_checkpoints uses
    assert [p.name for p in sorted(tmp_path.glob("epoch_*.safetensors"))] == ["epoch_001.safetensors"]


# --- the bundled folder is a setting ---


def test_the_bundled_folder_is_read_from_the_setting_at_run_time(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_LAB_CHECKPOINTS", str(tmp_path))
    with pytest.raises(BadCheckpoint, match="does not exist"):
        load_checkpoint("lenet5-mnist-max")
    assert not any(row["available"] for row in bundled_checkpoints())
    for name in ("lenet5-mnist-max.safetensors", "lenet5-mnist-max.json"):
        shutil.copy(PROJECT_DIR / "checkpoints" / name, tmp_path / name)
    assert resolve_checkpoint("lenet5-mnist-max") == tmp_path / "lenet5-mnist-max.safetensors"
    assert load_checkpoint("lenet5-mnist-max").config.conv[0].pool == "max"


def test_a_damaged_sidecar_only_loses_its_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_LAB_CHECKPOINTS", str(tmp_path))
    shutil.copy(PROJECT_DIR / "checkpoints" / "lenet5-mnist-max.safetensors", tmp_path)
    (tmp_path / "lenet5-mnist-max.json").write_text("{broken")
    row = {r["name"]: r for r in bundled_checkpoints()}["lenet5-mnist-max"]
    assert row["available"] and row["test_accuracy"] is None
