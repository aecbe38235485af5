"""The program's start-up and exit: the garbage collector is kept out of start-up (importing torch makes about a
million objects and no garbage) and is back on, over only what comes after, before any command does its work."""

import gc
import subprocess
import sys

from tests.conftest import ROOT


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_startup_done_freezes_and_turns_the_collector_back_on_only_where_run_turned_it_off():
    out = python(
        "import gc\n"
        "from cnn_core.cli import startup_done\n"
        "gc.disable(); startup_done()\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]
    from cnn_core.cli import startup_done  # in this process (as in any caller of main()) it changes nothing

    frozen = gc.get_freeze_count()
    startup_done()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def _collector_during(command: str, patch: str) -> list[str]:
    """Run the program (cli.run, as ``python -m cnn_core`` does) with ``patch`` recording whether the collector
    is on when the command does its work; returns that, whether it is on at the end, and the exit code."""
    out = python(
        "import gc, sys\n"
        "seen = []\n"
        f"{patch}\n"
        f"sys.argv = ['cnn-lab', *{command.split()!r}]\n"
        "from cnn_core import cli\n"
        "try:\n"
        "    cli.run()\n"
        "except SystemExit as e:\n"
        "    print(*seen, gc.isenabled(), e.code)\n"
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-1].split()  # after the command's own output


def test_summary_runs_with_the_collector_on():
    patch = (
        "import cnn_core.cli.commands as c\n"
        "real = c.cmd_summary\n"
        "c.cmd_summary = lambda args: seen.append(gc.isenabled()) or real(args)"
    )
    assert _collector_during("summary", patch) == ["True", "True", "0"]


def test_train_turns_the_collector_back_on_before_training(tmp_path):
    patch = (
        "import cnn_core.runs.runner as r\n"
        "real = r.execute_run\n"
        "r.execute_run = lambda *a, **k: seen.append(gc.isenabled()) or real(*a, **k)"
    )
    command = f"train --epochs 1 --json --runs-dir {tmp_path}"
    assert _collector_during(command, patch) == ["True", "True", "0"]


def test_the_program_still_exits_with_the_commands_code():
    out = subprocess.run(
        [sys.executable, "-m", "cnn_core", "train", "--epochs", "1", "--val-fraction", "0.95"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "error: train.val_fraction: expected a number in [0, 0.9), got 0.95"
