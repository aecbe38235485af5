"""Short real runs from the terminal: whatever the number of steps, a run ends with a status, never a traceback."""

import pytest

from cnn_core.runs import RunStore


@pytest.mark.slow
def test_a_run_of_four_steps_completes(sandbox, small_idx):
    """220 training digits in batches of 64: 4 steps in one epoch (--epochs 4 --batch-size 1024 does the same)."""
    out = sandbox.cli("train", "--data-dir", str(small_idx), "--epochs", "1", "--batch-size", "64")
    assert "Traceback" not in out.stderr, out.stderr[-600:]
    assert out.returncode == 0
    assert [r.status for r in RunStore(sandbox.runs).list()] == ["completed"]
