"""Sweeps from the terminal: a spec that cannot run is refused before Ray starts, and a sweep never reports
success when every trial failed, nor waits forever without saying why."""

import json
import time
from pathlib import Path

import pytest

from cnn_core.runs import RunStore
from tests.reliability.conftest import error_line

# A narrow LeNet for one epoch: Ray's own start-up is the cost of a sweep test, not the training.
NARROW = {
    "model": {"conv": [{"out_channels": 2, "kernel_size": 5, "padding": 2}, {"out_channels": 4, "kernel_size": 5}]},
    "train": {"epochs": 1, "batch_size": 64, "augment": False, "device": "cpu"},
}


def write_spec(folder: Path, **fields) -> str:
    path = folder / "spec.json"
    spec = {"base": NARROW, "space": {"train.lr": {"grid": [0.01, 0.02]}}, **fields}
    path.write_text(json.dumps(spec))
    return str(path)


def refused_quickly(sandbox, *args: str, seconds: float = 15) -> str:
    """A sweep refused with one line and exit 2, fast (Ray never started), with no sweep recorded."""
    began = time.monotonic()
    out = sandbox.cli("sweep", *args)
    took = time.monotonic() - began
    line = error_line(out)
    assert out.returncode == 2, out.stderr
    assert took < seconds, f"{took:.1f} s: Ray started?"
    assert not sandbox.runs.exists() or not RunStore(sandbox.runs).sweeps.list()
    return line


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
        ({"data_dir": "/nonexistent/cnn-lab-data"}, "is not a folder"),
        ({"dataset": "cifar10"}, "cifar10 is not on this machine"),
    ],
)
def test_a_sweep_whose_data_is_missing_is_refused_before_ray_starts(sandbox, fields, says):
    line = refused_quickly(sandbox, write_spec(sandbox.root, **fields))
    assert says in line


def test_a_data_dir_without_images_is_refused_before_ray_starts(sandbox, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    assert "no class folders" in refused_quickly(sandbox, write_spec(sandbox.root, data_dir=str(empty)))


@pytest.mark.slow
def test_a_sweep_whose_every_trial_fails_is_failed_and_exits_non_zero(sandbox, small_idx, tmp_path):
    """IDX files that exist but hold garbage pass the checks up front; every trial then fails in Ray."""
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in small_idx.iterdir():
        (broken / path.name).write_bytes(b"not an IDX file at all")
    out = sandbox.cli("sweep", write_spec(sandbox.root, data_dir=str(broken)), timeout=240)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.splitlines()[-1].startswith("error: 2 of 2 trial(s) failed"), out.stderr[-2000:]
    [sweep] = RunStore(sandbox.runs).sweeps.list()
    assert sweep.status == "failed"


@pytest.mark.parametrize("address", ["127.0.0.1:notaport", "127.0.0.1:99999", "127.0.0.1", ":6379", "a b:1"])
def test_a_cluster_address_ray_cannot_parse_is_refused_in_one_line(sandbox, address):
    line = refused_quickly(sandbox, write_spec(sandbox.root), "--address", address)
    assert "expected HOST:PORT" in line


def test_a_bad_ray_address_in_the_environment_is_refused_too(sandbox):
    spec = write_spec(sandbox.root)
    began = time.monotonic()
    out = sandbox.cli("sweep", spec, env={"RAY_ADDRESS": "127.0.0.1:notaport"})
    assert "expected HOST:PORT" in error_line(out) and out.returncode == 2
    assert time.monotonic() - began < 15
