"""The cost budget from the terminal: a run over ``CNN_LAB_MAX_MEMORY_MB`` / ``CNN_LAB_MAX_DISK_MB`` is refused in
one line naming the limit and the variable, and a value that is not a number of megabytes names the variable."""

import pytest

from tests.reliability.conftest import STORE_FILES, changes, error_line, run_folders, under

DATA_ROOT = "no-data-here"  # the sandbox's CNN_LAB_DATA


def test_a_default_train_over_the_memory_limit_is_refused_naming_limit_and_variable(sandbox):
    before = sandbox.snapshot()
    out = sandbox.cli("train", env={"CNN_LAB_MAX_MEMORY_MB": "1"})
    assert out.returncode == 2
    line = error_line(out)
    assert line.startswith("error: this run needs about ") and " of memory (" in line
    assert "the limit is 1 MB (set CNN_LAB_MAX_MEMORY_MB to change it)" in line
    after = sandbox.snapshot(under(*STORE_FILES, DATA_ROOT))
    assert after == {k: v for k, v in before.items() if not k.startswith(DATA_ROOT)}, changes(before, after)
    assert run_folders(sandbox.runs) == []


def test_a_train_refused_by_the_budget_leaves_no_folders_in_the_data_root(sandbox):
    out = sandbox.cli("train", env={"CNN_LAB_MAX_MEMORY_MB": "1"})
    assert out.returncode == 2
    assert not (sandbox.root / DATA_ROOT).exists(), sorted(p.name for p in (sandbox.root / DATA_ROOT).rglob("*"))


@pytest.mark.parametrize(
    "variable, message",
    [
        ("CNN_LAB_MAX_MEMORY_MB", "of memory (batch 64: activations"),
        ("CNN_LAB_MAX_DISK_MB", "of disk (11 checkpoints of"),
    ],
)
def test_a_run_over_a_limit_is_refused_before_anything_is_recorded(sandbox, small_idx, variable, message):
    before = sandbox.snapshot()
    out = sandbox.cli(
        "train", "--data-dir", str(small_idx), "--epochs", "10", "--batch-size", "64", env={variable: "1"}
    )
    assert out.returncode == 2
    line = error_line(out)
    assert message in line and f"the limit is 1 MB (set {variable} to change it)" in line
    after = sandbox.snapshot(under(*STORE_FILES))
    assert after == before, changes(before, after)


@pytest.mark.parametrize(
    "variable, value",
    [
        ("CNN_LAB_MAX_MEMORY_MB", "lots"),
        ("CNN_LAB_MAX_MEMORY_MB", "-5"),
        ("CNN_LAB_MAX_MEMORY_MB", "\uff11"),  # a full-width 1: int() would take it, the budget must not
        ("CNN_LAB_MAX_DISK_MB", "lots"),
    ],
    ids=["lots", "negative", "full-width-digit", "disk-lots"],
)
def test_a_limit_that_is_not_a_number_of_megabytes_is_one_line_naming_the_variable(sandbox, small_idx, variable, value):
    out = sandbox.cli("train", "--data-dir", str(small_idx), "--epochs", "1", env={variable: value})
    assert out.returncode == 2
    line = error_line(out)
    assert line.startswith(f"error: {variable}: expected a whole number of megabytes from 1 to 1,000,000,000, got ")
    assert run_folders(sandbox.runs) == []


def test_predict_with_a_bad_memory_limit_is_one_line(sandbox):
    out = sandbox.cli("predict", "nothing.png", env={"CNN_LAB_MAX_MEMORY_MB": "lots"}, timeout=60)
    assert out.returncode == 2
    assert error_line(out).startswith("error: CNN_LAB_MAX_MEMORY_MB: expected a whole number")
