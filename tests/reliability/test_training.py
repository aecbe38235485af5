"""Short real runs from the terminal: whatever the number of steps, a run ends with a status, never a traceback."""

import json
import shutil

import pytest

from cnn_core.runs import RunStore
from tests.reliability.conftest import error_line


@pytest.mark.slow
def test_a_run_of_four_steps_completes(sandbox, small_idx):
    """220 training digits in batches of 64: 4 steps in one epoch (--epochs 4 --batch-size 1024 does the same)."""
    out = sandbox.cli("train", "--data-dir", str(small_idx), "--epochs", "1", "--batch-size", "64")
    assert "Traceback" not in out.stderr, out.stderr[-600:]
    assert out.returncode == 0
    [run] = RunStore(sandbox.runs).list()
    assert run.status == "completed"
    assert (run.dataset, run.name) == ("idx", "idx-max-seed0")  # an IDX folder of unknown name: digits' classes


@pytest.mark.slow
def test_an_idx_folder_named_after_a_known_dataset_is_recorded_as_that_dataset(sandbox, small_idx, tmp_path):
    """Debian's /usr/share/datasets/fashion-mnist: the run is named for it and shows its class names."""
    folder = shutil.copytree(small_idx, tmp_path / "Fashion-MNIST")
    out = sandbox.cli("train", "--data-dir", str(folder) + "/", "--epochs", "1", "--json")
    assert out.returncode == 0, error_line(out)
    [run] = RunStore(sandbox.runs).list()
    assert (run.dataset, run.name) == ("fashion-mnist", "fashion-mnist-max-seed0")
    assert json.loads(out.stdout.splitlines()[-1])["run_id"] == run.id


@pytest.mark.slow
@pytest.mark.parametrize("epochs", [2, 3])
def test_a_short_run_stuck_at_chance_is_diverged_with_its_likely_cause(sandbox, epochs):
    """AdamW at lr 1 on the bundled sample: 29 steps an epoch, far from the 300 the step rule waits for (at lr 10 the
    loss explodes from its first step's value, another rule)."""
    out = sandbox.cli("train", "--optimizer", "adamw", "--lr", "1", "--epochs", str(epochs), "--json")
    assert out.returncode == 1, out.stderr[-1000:]
    summary = json.loads(out.stdout.splitlines()[-1])
    assert summary["status"] == "diverged"
    assert "accuracy is stuck at chance" in summary["error"]
    assert summary["error"].endswith("the learning rate 1 is probably too high")
    assert out.stderr.splitlines()[-1] == f"error: {summary['error']}"
