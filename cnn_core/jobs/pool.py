"""Warm local workers: processes that have imported torch and wait for run ids (``runs/warm.py``).

One worker trains one run at a time, so the pool holds as many as runs may train at once. A worker is busy from
the moment it is given a run until the store says that run ended; one that dies is taken out, its run reported
(the manager marks it ``interrupted``) and a new one started in its place. Each is its own process and session:
a crash, a page rerun or a Ctrl-C in the app's terminal never reaches another run.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cnn_core.runs import RunStore


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    run_id: str | None = None  # the run it was given, until the store says that run ended
    served: int = 0
    _stdin: IO[bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        assert self.proc.stdin is not None
        self._stdin = self.proc.stdin

    @property
    def pid(self) -> int:
        return self.proc.pid

    def give(self, run_id: str) -> None:
        """Hand it a claimed run (a worker still warming up reads it once it is ready)."""
        self._stdin.write(f"{run_id}\n".encode())
        self._stdin.flush()
        self.run_id, self.served = run_id, self.served + 1

    def close(self) -> None:
        """No more runs: it ends once its current run has (its standard input is closed)."""
        try:
            self._stdin.close()
        except OSError:  # it is gone already
            pass


class WarmPool:
    """Up to ``size`` warm workers for the run store at ``root``."""

    def __init__(self, root: Path, size: int) -> None:
        self.root, self.size = root, size
        self.workers: list[Worker] = []
        self.started = 0  # workers started in all (replacements included)

    def fill(self) -> None:
        while len(self.workers) < self.size:
            self.workers.append(Worker(self._spawn()))
            self.started += 1

    def _spawn(self) -> subprocess.Popen[bytes]:
        log = open(self.root / "workers.log", "ab")
        cmd = [sys.executable, "-m", "cnn_core", "pool-worker", "--runs-dir", str(self.root)]
        return subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def reap(self, store: RunStore) -> list[tuple[str | None, int]]:
        """Take out dead workers, returning (the run each held, its exit code); free those whose run ended."""
        dead = []
        for worker in list(self.workers):
            code = worker.proc.poll()
            if code is not None:
                self.workers.remove(worker)
                worker.close()
                dead.append((worker.run_id, code))
            elif worker.run_id is not None and store.get(worker.run_id).finished:
                worker.run_id = None
        return dead

    def free(self) -> list[Worker]:
        return [w for w in self.workers if w.run_id is None]

    def busy(self) -> dict[str, Worker]:
        return {w.run_id: w for w in self.workers if w.run_id is not None}

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.workers = []
