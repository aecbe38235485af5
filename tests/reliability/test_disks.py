"""Full disks and folders that change while they are read: one line, whatever the command, and nothing half
made left behind. The disks are real: a small tmpfs mounted for the test (skipped where it cannot be)."""

import pytest

from cnn_core.runs import RunStore
from tests.imagesets import make_image_folder
from tests.reliability.conftest import last_error

DISK_FULL = "the disk is full: free some space and try again"


@pytest.mark.slow
def test_a_train_on_a_full_disk_fails_its_run_in_one_line(sandbox, small_disk):
    """400 KB holds the store and one 250 KB checkpoint, not two: the second epoch's save meets ENOSPC. The
    budget is told the disk is big (it would refuse the run up front otherwise), as when another program fills
    the disk during the run."""
    runs = small_disk(400) / "runs"
    env = {"CNN_LAB_RUNS": str(runs), "CNN_LAB_MAX_DISK_MB": "100"}
    out = sandbox.cli("train", "--epochs", "3", "--batch-size", "256", env=env)
    assert out.returncode == 1
    assert last_error(out).endswith(f"failed: {DISK_FULL}")
    [run] = RunStore(runs).list()
    assert run.status == "failed" and DISK_FULL in run.error
    assert not [p.name for p in runs.rglob(".*.tmp")], "a half-written checkpoint was left"


def test_a_data_add_on_a_full_disk_is_one_line_and_leaves_no_staging_folder(sandbox, small_disk, tmp_path):
    datasets = small_disk(100) / "datasets"
    images = make_image_folder(tmp_path / "images", per_class=60, classes=("red-disc", "blue-disc"), size=(96, 96))
    out = sandbox.cli("data", "add", "discs", str(images), env={"CNN_LAB_DATASETS": str(datasets)})
    assert out.returncode != 0
    assert last_error(out) == f"error: adding dataset 'discs' to {datasets} failed: {DISK_FULL}"
    assert list(datasets.iterdir()) == []


@pytest.mark.parametrize("command", [("data", "add", "proc"), ("train", "--epochs", "1", "--data-dir")])
def test_a_folder_that_changes_while_it_is_read_is_one_line(sandbox, command):
    """/proc/self is a folder whose files (the reader's own open files) come and go while it is walked."""
    out = sandbox.cli(*command, "/proc/self")
    assert out.returncode != 0
    last_error(out)
    assert not RunStore(sandbox.runs).list() if sandbox.runs.exists() else True


def test_the_data_page_shows_a_folder_that_changes_while_it_is_read_as_one_error():
    from tests.app.test_data_page import open_page, submit

    at = submit(open_page(), "proc", "/proc/self")
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1
