"""The job manager: training runs in worker processes, never in the app's script thread.

Runs are queued in the run store; a small background thread starts workers
(``python -m cnn_core worker RUN_ID``, the CLI's own code path, so a run trains as fast as from
the terminal) up to a concurrency limit, reaps them, and marks runs whose worker died as
``interrupted``. The store is the queue, so a restarted app picks up where the last one left off,
and a page only ever reads the store.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import torch

from cnn_core import budget
from cnn_core.config import RunConfig
from cnn_core.runs import Run, RunStore, Status, pid_alive

POLL_SECONDS = 0.5


def default_concurrency() -> int:
    """One run on a CPU (a LeNet run already uses every core); two per GPU (small models leave it idle)."""
    if torch.cuda.is_available():
        return 2 * torch.cuda.device_count()
    return 1


class JobManager:
    """Queue, start, stop and watch training runs; one per app, shared by every session."""

    def __init__(
        self, store: RunStore | None = None, max_concurrent: int | None = None, start_thread: bool = True
    ) -> None:
        self.store = store or RunStore()
        self.max_concurrent = max_concurrent or default_concurrency()
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self.store.remove_partial_writes()  # temp files of checkpoint writes a crash interrupted
        self.store.mark_orphans(pid_alive)  # runs left running by a previous app whose worker is gone
        self._last_error: str | None = None
        self._thread = None
        if start_thread:
            self._thread = threading.Thread(target=self._loop, name="cnn-lab-jobs", daemon=True)
            self._thread.start()

    def submit(
        self,
        run: RunConfig,
        dataset: str = "mnist",
        name: str | None = None,
        data_dir: str | None = None,
        group_id: str | None = None,
    ) -> str:
        """Queue a run; it starts as soon as a worker slot is free. Returns the run id.

        A run that would cost more memory or disk than allowed is refused here (``OverBudget``), before it is queued."""
        budget.check(run)
        run_id = self.store.create(run, dataset=dataset, name=name, data_dir=data_dir, group_id=group_id)
        self._wake.set()
        return run_id

    def stop(self, run_id: str) -> None:
        """Cancel a queued run now; a running one stops at its next step (within a second)."""
        self.store.request_stop(run_id)
        self._wake.set()

    def running(self) -> list[str]:
        with self._lock:
            return [run_id for run_id, proc in self._procs.items() if proc.poll() is None]

    def pump(self) -> None:
        """Reap finished workers, then start queued runs while slots are free."""
        with self._lock:
            for run_id, proc in list(self._procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self._procs[run_id]
                if code != 0:  # the worker died without recording an end (killed, crashed)
                    how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
                    self.store.interrupt(
                        run_id,
                        f"the worker {how}; the last epoch's checkpoint is kept",
                        status=Status.INTERRUPTED if code < 0 else Status.FAILED,
                    )
            free = self.max_concurrent - len(self._procs)
            for run in reversed(self.store.list(status=(Status.QUEUED,))) if free > 0 else []:
                if free <= 0 or self._closed:
                    break
                if self.store.claim(run.id):  # queued -> running here, so no other app starts it too
                    try:
                        self._procs[run.id] = self._spawn(run.id)
                    except OSError as err:
                        self.store.fail(run.id, f"could not start a worker process: {err}")
                        continue
                    free -= 1

    def _spawn(self, run_id: str) -> subprocess.Popen:
        log = open(self.store.run_dir(run_id) / "worker.log", "ab")
        # Its own session: a Ctrl-C in the app's terminal or a page rerun never reaches the worker.
        return subprocess.Popen(
            [sys.executable, "-m", "cnn_core", "worker", run_id, "--runs-dir", str(self.store.root)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _loop(self) -> None:
        last_orphan_check = time.monotonic()
        while not self._closed:
            try:
                self.pump()
                if time.monotonic() - last_orphan_check > 10:  # workers started by another app process
                    self.store.mark_orphans(pid_alive)
                    last_orphan_check = time.monotonic()
                self._last_error = None
            except Exception as err:  # a locked or vanished store must not kill the thread
                message = f"cnn-lab jobs: {type(err).__name__}: {err}"
                if message != self._last_error:  # once, not twice a second
                    print(message, file=sys.stderr)
                    self._last_error = message
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def wait(self, run_id: str, timeout: float = 600) -> Run:
        """Block until a run ends (for scripts and tests); returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._thread is None:
                self.pump()
            run = self.store.get(run_id)
            if run.finished:
                return run
            time.sleep(0.1)
        raise TimeoutError(f"run {run_id} still {run.status} after {timeout} s")

    def close(self, stop_runs: bool = False) -> None:
        """Stop the manager thread; running workers go on unless ``stop_runs``."""
        self._closed = True
        self._wake.set()
        if stop_runs:
            for run_id in self.running():
                self.stop(run_id)
