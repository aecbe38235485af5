"""Hostile checkpoint files through ``cnn-lab predict --checkpoint X digit.png``: exit 2, one ``error:`` line,
no traceback, no hang, nothing unpickled, nothing written, and a huge model refused before it is built."""

import json
import os
import pickle
import struct
import subprocess
from typing import Any

import pytest
import torch
from PIL import Image, ImageDraw
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from cnn_core.config import ModelConfig
from cnn_core.model import build_model
from cnn_core.model.checkpoint import HASH_KEY, save_checkpoint, weights_sha256
from tests.reliability.conftest import changes, error_line

CONFIG_JSON = json.dumps(ModelConfig().to_dict())


def lenet_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.contiguous() for k, v in build_model(ModelConfig()).state_dict().items()}


def saved(path):
    torch.manual_seed(0)
    return save_checkpoint(path, build_model(ModelConfig()), ModelConfig(), {})


def flipped_byte(path):
    saved(path)
    flipped_byte_in_place(path)


def flipped_byte_in_place(path):
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01  # inside fc2's bias: still a valid float, so only the hash can tell
    path.write_bytes(data)


def truncated(path):
    saved(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def header_length_2_40(path):
    path.write_bytes(struct.pack("<Q", 2**40) + b'{"__metadata__": {}}' + bytes(64))


def zero_bytes(path):
    path.write_bytes(b"")


def no_metadata(path):
    save_file({"w": torch.zeros(1)}, str(path))


def saved_config_invalid(path):
    config = ModelConfig().to_dict() | {"fc": [99999999999999999999999]}
    save_file({"w": torch.zeros(1)}, str(path), metadata={"format": "cnn-lab/1", "config": json.dumps(config)})


def nan_weights(path):
    state = lenet_state()
    state["conv1.weight"][0, 0, 0, 0] = float("nan")
    save_file(state, str(path), metadata={"format": "cnn-lab/1", "config": CONFIG_JSON})  # no hash: an old file


def wrong_shape(path):
    config = ModelConfig().to_dict()
    config["conv"][0]["out_channels"] = 16
    save_file(lenet_state(), str(path), metadata={"format": "cnn-lab/1", "config": json.dumps(config)})


def over_64_mb(path):
    saved(path)
    os.truncate(path, 65 << 20)  # sparse: costs no disk


def a_folder(path):
    path.mkdir()


def a_fifo(path):
    os.mkfifo(path)


def a_symlink_loop(path):
    os.symlink(path.name, path)


# (builder, what the error line says)
CHECKPOINTS = {
    "folder": (a_folder, "is a folder, not a checkpoint file"),
    "fifo": (a_fifo, "is not a regular file"),
    "symlink-loop": (a_symlink_loop, "is a symlink loop"),
    "zero-bytes": (zero_bytes, "too short to be a safetensors file"),
    "truncated": (truncated, "not a valid safetensors file"),
    "header-length-2**40": (header_length_2_40, "header length 1099511627776 is impossible"),
    "no-metadata": (no_metadata, "no CNN Lab model config in its metadata"),
    "saved-config-invalid": (saved_config_invalid, "its saved config is invalid: fc1.width"),
    "flipped-byte": (flipped_byte, "do not match the SHA-256 recorded when it was saved"),
    "nan-weights": (nan_weights, "conv1.weight holds NaN or infinite values"),
    "wrong-shape": (wrong_shape, "size mismatch for conv1.weight: file has (6, 1, 5, 5), config needs (16, 1, 5, 5)"),
    "over-64-MB": (over_64_mb, "larger than 64 MB"),
}


@pytest.fixture
def digit(sandbox):
    """A drawn 1 on white paper, the kind of image ``predict`` is for."""
    image = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(image).line([(32, 8), (32, 56)], fill=0, width=6)
    path = sandbox.root / "digit.png"
    image.save(path)
    return str(path)


def predict(sandbox, checkpoint, digit, env=None):
    return sandbox.cli("predict", "--checkpoint", str(checkpoint), digit, timeout=60, env=env)


@pytest.mark.parametrize("build, message", CHECKPOINTS.values(), ids=CHECKPOINTS.keys())
def test_a_bad_checkpoint_is_refused_in_one_line_without_hanging_or_writing(sandbox, digit, build, message):
    path = sandbox.root / "model.safetensors"
    build(path)
    before = sandbox.snapshot()
    out = predict(sandbox, path, digit)  # a FIFO that were opened for reading would block: timeout=60 fails it
    assert out.returncode == 2
    assert message in error_line(out)
    assert out.stdout == ""
    after = sandbox.snapshot()
    assert after == before, changes(before, after)


def test_a_good_checkpoint_predicts_so_the_refusals_above_are_about_the_files(sandbox, digit):
    path = saved(sandbox.root / "model.safetensors")
    out = predict(sandbox, path, digit)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{digit}: ")


class CreatesMarker:
    """Unpickling this creates a file: the proof that something unpickled it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plain_pickle(payload, path) -> None:
    path.write_bytes(pickle.dumps(payload, protocol=0))


def _torch_save(payload, path) -> None:
    torch.save({"payload": payload}, path)


@pytest.mark.parametrize("save", [_plain_pickle, _torch_save], ids=["pickle", "torch-save-zip"])
def test_a_pickle_named_safetensors_is_never_unpickled(sandbox, digit, save):
    marker = sandbox.root / "unpickled-marker"
    path = sandbox.root / "model.safetensors"
    save(CreatesMarker(str(marker)), path)
    out = predict(sandbox, path, digit)
    assert out.returncode == 2
    error_line(out)
    assert not marker.exists()


def test_a_pickle_checkpoint_is_refused_by_name_before_it_is_read(sandbox, digit):
    marker = sandbox.root / "unpickled-marker"
    path = sandbox.root / "model.pt"
    torch.save({"payload": CreatesMarker(str(marker))}, path)
    out = predict(sandbox, path, digit)
    assert out.returncode == 2
    assert "only .safetensors checkpoints are accepted (pickles are never loaded)" in error_line(out)
    assert not marker.exists()


def predict_measured(sandbox, path, digit, **env) -> tuple[subprocess.CompletedProcess, Any]:
    """``predict`` in a subprocess, with its own peak memory (``ru_maxrss``, KB) and CPU time."""
    proc = subprocess.Popen(
        sandbox.command("predict", "--checkpoint", str(path), digit),
        cwd=sandbox.cwd,
        env=sandbox.environ(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with proc.stdout, proc.stderr:
        stdout, stderr = proc.stdout.read(), proc.stderr.read()  # a few bytes: no pipe can fill
    _, status, usage = os.wait4(proc.pid, 0)
    return subprocess.CompletedProcess(proc.args, os.waitstatus_to_exitcode(status), stdout, stderr), usage


def memory_beyond_a_good_predict(sandbox, usage: Any, digit: str) -> int:
    """KB of peak memory ``usage`` took beyond the same command on a good LeNet-5 file, measured now: a process's
    resident size after importing torch depends on how much of its libraries the page cache maps in (0.5-1.5 GB
    here), a model's weights do not."""
    good = sandbox.root / "good.safetensors"
    save_file(lenet_state(), str(good), metadata={"format": "cnn-lab/1", "config": json.dumps(ModelConfig().to_dict())})
    _, baseline = predict_measured(sandbox, good, digit)
    return int(usage.ru_maxrss - baseline.ru_maxrss)


def test_a_checkpoint_describing_a_huge_model_is_refused_before_it_is_built(sandbox, digit):
    """A stranger's config for 65 billion parameters (732 GB to load): one line, and the process stays small."""
    config = ModelConfig().to_dict()
    config["conv"] = [dict(block, out_channels=4096) for block in config["conv"]]
    config["fc"] = [65_536] * 16
    path = sandbox.root / "huge.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"format": "cnn-lab/1", "config": json.dumps(config)})
    out, usage = predict_measured(sandbox, path, digit, CNN_LAB_MAX_MEMORY_MB="4096")  # same verdict anywhere
    assert out.returncode == 2
    line = error_line(out)
    assert "this model needs about" in line and "to load (65,5" in line and "CNN_LAB_MAX_MEMORY_MB" in line
    extra = memory_beyond_a_good_predict(sandbox, usage, digit)
    assert extra < 512 * 1024, f"{extra} KB more than a good file's predict: was the model built?"


def test_a_config_that_does_not_match_its_weights_is_refused_before_the_model_is_built(sandbox, digit):
    """LeNet-5's 250 KB of weights under a config (within the limits) with 4,096 filters in conv2 and conv3: 1.7 GB
    of weights to build and initialise. The header's shapes say "size mismatch" first, in a small process."""
    config = ModelConfig().to_dict()
    config["conv"][1]["out_channels"] = config["conv"][2]["out_channels"] = 4096
    path = sandbox.root / "mismatch.safetensors"
    save_file(lenet_state(), str(path), metadata={"format": "cnn-lab/1", "config": json.dumps(config)})
    out, usage = predict_measured(sandbox, path, digit, CNN_LAB_MAX_MEMORY_MB="16384")
    assert out.returncode == 2
    assert "size mismatch for conv2.weight" in error_line(out)
    extra = memory_beyond_a_good_predict(sandbox, usage, digit)
    assert extra < 512 * 1024, f"{extra} KB more than a good file's predict: was the model built?"


@pytest.fixture
def bundled_copy(sandbox):
    """The bundled checkpoints in a folder of the test's own (``CNN_LAB_CHECKPOINTS``), to damage."""
    import shutil

    from tests.conftest import ROOT

    folder = shutil.copytree(ROOT / "checkpoints", sandbox.root / "checkpoints")
    sandbox.env["CNN_LAB_CHECKPOINTS"] = str(folder)
    return folder


def test_a_flipped_byte_in_a_bundled_checkpoint_is_refused(sandbox, digit, bundled_copy):
    flipped_byte_in_place(bundled_copy / "lenet5-mnist-max.safetensors")
    out = predict(sandbox, "lenet5-mnist-max", digit)
    assert out.returncode == 2
    assert "the file is damaged" in error_line(out)


def test_a_bundled_checkpoint_whose_recorded_hash_was_rewritten_is_refused(sandbox, digit, bundled_copy):
    """Its own SHA-256 made to match the changed weights: the hash shipped in the code still tells."""
    path = bundled_copy / "lenet5-mnist-avg.safetensors"
    with safe_open(str(path), "pt") as fh:
        metadata = fh.metadata()
    state = load_file(str(path))
    state["fc2.bias"][0] += 1.0
    save_file(state, str(path), metadata=metadata | {HASH_KEY: weights_sha256(state)})
    out = predict(sandbox, "lenet5-mnist-avg", digit)
    assert out.returncode == 2
    assert "not the ones CNN Lab shipped" in error_line(out)


def test_the_bundled_checkpoints_are_verified(sandbox, digit):
    for name in ("lenet5-mnist-max", "lenet5-mnist-avg"):
        out = predict(sandbox, name, digit)
        assert out.returncode == 0 and out.stderr == "", out.stderr


def test_a_checkpoint_without_its_hash_loads_with_one_unverified_warning(sandbox, digit):
    path = saved(sandbox.root / "model.safetensors")
    with safe_open(str(path), "pt") as fh:
        metadata = {k: v for k, v in fh.metadata().items() if k != HASH_KEY}
    save_file(load_file(str(path)), str(path), metadata=metadata)
    out = predict(sandbox, path, digit)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        "warning: model.safetensors is unverified: it records no SHA-256 of its weights, so damage to it cannot be "
        "detected"
    ]
    assert out.stdout.startswith(f"{digit}: ")
