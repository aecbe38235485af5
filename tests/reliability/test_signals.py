"""Real signals to a real ``cnn-lab train``: SIGTERM and SIGHUP end it like Ctrl-C (exit 130, run ``interrupted``,
its last epoch's checkpoint kept and loadable); after SIGKILL, ``cnn-lab runs`` shows it ``interrupted``."""

import json
import signal
import subprocess

import pytest

from cnn_core.model.checkpoint import PARTIAL_WRITE, load_checkpoint
from cnn_core.runs import Run, RunStore
from tests.polling import wait_until
from tests.reliability.conftest import make_sandbox

pytestmark = pytest.mark.slow


def start_training(sandbox, small_idx) -> subprocess.Popen:
    """A 50-epoch run on 300 digits; its output goes to files (a tqdm bar must never block on a full pipe)."""
    logs = sandbox.root / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / "stdout", "w") as stdout, open(logs / "stderr", "w") as stderr:
        return subprocess.Popen(
            sandbox.command("train", "--data-dir", str(small_idx), "--epochs", "50", "--batch-size", "64"),
            cwd=sandbox.cwd,
            env=sandbox.environ(),
            stdout=stdout,
            stderr=stderr,
        )


def wait_for_an_epoch(sandbox, proc: subprocess.Popen, timeout: float = 180) -> Run:
    """Poll the store (as the app does) until the run is ``running`` with at least one epoch saved."""

    def running_with_an_epoch() -> Run | None:
        assert proc.poll() is None, (sandbox.root / "logs" / "stderr").read_text()
        folders = [p for p in sandbox.runs.glob("2*") if p.is_dir()] if sandbox.runs.is_dir() else []
        if folders:  # the store exists and holds the run: reading it now cannot race its creation
            runs = RunStore(sandbox.runs).list()
            if runs and runs[0].status == "running" and runs[0].epochs_done >= 1:
                return runs[0]
        return None

    try:
        return wait_until(running_with_an_epoch, timeout, "a running run with an epoch saved")
    except AssertionError:
        proc.kill()
        raise


def partial_writes(folder) -> list[str]:
    return [p.name for p in folder.rglob("*") if PARTIAL_WRITE.fullmatch(p.name)]


@pytest.fixture(scope="module", params=[signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def signalled(request, tmp_path_factory, small_idx):
    """One CLI run stopped by the signal after its first epoch: (sandbox, run, exit code, stderr)."""
    box = make_sandbox(tmp_path_factory.mktemp(request.param.name) / "box")
    proc = start_training(box, small_idx)
    run = wait_for_an_epoch(box, proc)
    proc.send_signal(request.param)
    code = proc.wait(timeout=60)
    return box, run, code, (box.root / "logs" / "stderr").read_text()


def test_a_terminating_signal_ends_a_cli_run_as_interrupted_keeping_its_last_epoch(signalled):
    box, run, code, stderr = signalled
    assert code == 130
    assert "Traceback" not in stderr
    assert "interrupted\n" in stderr

    store = RunStore(box.runs)
    done = store.get(run.id)
    assert done.status == "interrupted"
    assert done.error.startswith("interrupted")
    epochs = store.epoch_checkpoints(run.id)
    assert len(epochs) >= 1 and done.checkpoint == str(epochs[-1])
    assert load_checkpoint(done.checkpoint).model is not None  # a whole file, not a torn write
    assert partial_writes(store.run_dir(run.id)) == []
    record = json.loads((store.run_dir(run.id) / "run.json").read_text())
    assert record["status"] == "interrupted"  # the folder's own record agrees (what --reimport reads)


def test_the_interrupted_message_is_the_last_line_on_its_own(signalled):
    _box, _run, code, stderr = signalled
    lines = [line.strip() for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1] == "interrupted", lines[-2:]
    assert all(not line.endswith("]interrupted") for line in lines)


def test_after_sigkill_cnn_lab_runs_shows_the_run_interrupted_not_running(sandbox, small_idx):
    proc = start_training(sandbox, small_idx)
    run = wait_for_an_epoch(sandbox, proc)
    proc.kill()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert RunStore(sandbox.runs).get(run.id).status == "running"  # nobody has looked yet

    out = sandbox.cli("runs", "--json")
    assert out.returncode == 0, out.stderr
    listed = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["id"], r["status"]) for r in listed] == [(run.id, "interrupted")]
    store = RunStore(sandbox.runs)
    done = store.get(run.id)
    epochs = store.epoch_checkpoints(run.id)
    assert done.checkpoint == str(epochs[-1])
    assert load_checkpoint(done.checkpoint).model is not None
