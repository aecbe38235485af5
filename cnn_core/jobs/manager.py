"""The job manager: training runs and sweeps in their own processes, never in the app's script thread.

Runs are queued in the run store, each with its owner; a small background thread starts them in the fair
queue's order (``fair.fair_order``: round-robin across people) and starts workers
(``python -m cnn_core worker RUN_ID``, the CLI's own code path, so a run trains as fast as from
the terminal) up to a concurrency limit, reaps them, and marks runs whose worker died as
``interrupted``. The store is the queue, so a restarted app picks up where the last one left off,
and a page only ever reads the store.

Sweeps go the same way: ``python -m cnn_core sweep-driver SWEEP_ID`` (Ray Tune needs a main thread), one at a
time, since a sweep already fills the machine (or drives a whole cluster). A driver that dies leaves its sweep
``interrupted`` with every finished trial kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import torch

from cnn_core.config import RunConfig, budget
from cnn_core.data import PUBLIC, library
from cnn_core.data.roots import server_folder
from cnn_core.errors import NotAllowed
from cnn_core.jobs import quotas
from cnn_core.jobs.bridge import ClusterBridge, address_of
from cnn_core.jobs.fair import Wait, fair_order, queue_wait
from cnn_core.jobs.pool import WarmPool
from cnn_core.people import LOCAL, Person
from cnn_core.runs import Run, RunStore, Status, Sweep, SweepStatus, pid_alive
from cnn_core.runs.runner import repair_epoch_records

if TYPE_CHECKING:
    from cnn_core.config.sweep import SweepConfig

POLL_SECONDS = 0.5


class _HasStatus(Protocol):
    @property
    def status(self) -> object: ...


_Item = TypeVar("_Item", bound=_HasStatus)  # a run or a sweep


def default_concurrency() -> int:
    """One run on a CPU (a LeNet run already uses every core); two per GPU (small models leave it idle)."""
    if torch.cuda.is_available():
        return 2 * torch.cuda.device_count()
    return 1


class JobManager:
    """Queue, start, stop and watch training runs; one per app, shared by every session."""

    def __init__(
        self,
        store: RunStore | None = None,
        max_concurrent: int | None = None,
        start_thread: bool = True,
        warm: bool | None = None,
        address: str | None = None,
    ) -> None:
        """Runs go to the Ray cluster at ``address`` (default: ``bridge.address_of``, the app's setting or
        ``RAY_ADDRESS``, read again as the queue is pumped) through a ``ClusterBridge``; with none, to warm workers
        (``pool.py``; ``warm``, default unless ``CNN_LAB_WARM_WORKERS=0``), else to a fresh process each. With
        ``start_thread`` (the app) the workers or the bridge start at once, ready for the first launch;
        otherwise with the first queued run."""
        self.store = store or RunStore()
        self.max_concurrent = max_concurrent or default_concurrency()
        if warm is None:
            warm = os.environ.get("CNN_LAB_WARM_WORKERS", "1") != "0"
        self.warm, self._pinned = warm, address
        self.address: str | None = None  # the cluster runs go to now (None: this machine)
        self.pool: WarmPool | ClusterBridge | None = None
        self._use(self._pinned or address_of(self.store))
        self._procs: dict[str, subprocess.Popen[bytes]] = {}  # fresh worker processes (not warm), by run
        self._drivers: dict[str, subprocess.Popen[bytes]] = {}  # sweep id -> its driver
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self.store.remove_partial_writes()  # temp files of checkpoint writes a crash interrupted
        repair_epoch_records(self.store)  # epoch checkpoints saved before they recorded their data
        self.store.mark_orphans(pid_alive)  # runs left running by a previous app whose worker is gone
        self.store.sweeps.mark_orphans(pid_alive)  # and sweeps whose driver is gone
        self._last_error: str | None = None
        self._thread = None
        if start_thread:
            if self.pool is not None:
                self.pool.fill()
            self._thread = threading.Thread(target=self._loop, name="cnn-lab-jobs", daemon=True)
            self._thread.start()

    def submit(
        self,
        run: RunConfig,
        dataset: str = "mnist",
        name: str | None = None,
        data_dir: str | None = None,
        group_id: str | None = None,
        owner: Person = LOCAL,
    ) -> str:
        """Queue ``owner``'s run; it starts in its turn in the fair queue. Returns the run id.

        Refused here, before it is queued: a run that would cost more memory or disk than allowed
        (``OverBudget``), one past the owner's quota or on a dataset or folder they may not read."""
        budget.check(run)
        self._check_data(dataset, data_dir, owner)
        quotas.check_run(self.store, owner)
        run_id = self.store.create(
            run, dataset=dataset, name=name, data_dir=data_dir, group_id=group_id, owner=owner.id
        )
        self._wake.set()
        return run_id

    @staticmethod
    def _check_data(dataset: str, data_dir: str | None, owner: Person) -> None:
        if data_dir is not None:
            server_folder(data_dir, owner)
        elif dataset not in PUBLIC and dataset != "idx":
            library.get_dataset(dataset, visible_to=owner)  # another person's private dataset is "no dataset"

    def stop(self, run_id: str, by: Person | None = None) -> None:
        """Cancel a queued run now; a running one stops at its next step (within a second). ``by``: only a
        run they may change."""
        self.store.request_stop(run_id, by)
        self._wake.set()

    def resume(self, run_id: str, by: Person | None = None) -> int:
        """Queue a stopped, interrupted or failed run again, to go on after its last saved epoch (that epoch is
        returned) in its owner's turn; refused in one line when there is nothing to go on from, or when ``by``
        may not change it or is at their quota."""
        from cnn_core.runs.runner import resume_run

        run = self.store.get_to_change(run_id, by)
        if by is not None:
            quotas.check_run(self.store, by)
        epoch = resume_run(self.store, run.id)
        self._wake.set()
        return epoch

    def move(self, run_id: str, first: bool, by: Person) -> None:
        """An administrator moves a queued run to the front (``first``) or the back of the queue."""
        if not by.admin:
            raise NotAllowed("only an administrator can reorder the queue")
        self.store.move_in_queue(run_id, first)
        self._wake.set()

    def _use(self, address: str | None) -> None:
        """Send the runs that start from now on to ``address`` (or to this machine); the runs the last back end
        has go on there (its workers or bridge end after them)."""
        if self.pool is not None:
            self.pool.close()
        self.address = address
        if address:
            self.pool = ClusterBridge(self.store.root, address)
        else:
            self.pool = WarmPool(self.store.root, self.max_concurrent) if self.warm else None

    @property
    def bridge(self) -> ClusterBridge | None:
        """The cluster bridge when runs go to a cluster (its ``info``, ``slots`` and ``error`` for the Admin page)."""
        return self.pool if isinstance(self.pool, ClusterBridge) else None

    def capacity(self) -> int:
        """How many runs train at once: the cluster's room for them, or this machine's limit."""
        return self.bridge.size if self.bridge is not None else self.max_concurrent

    def queue(self) -> list[Run]:
        """The queued runs in the order they will start."""
        return fair_order(self.store.list(status=(Status.QUEUED,)), self._served())

    def _served(self) -> list[Run]:
        return [r for r in self.store.list() if r.status != Status.QUEUED]

    def wait_of(self, run_id: str) -> Wait | None:
        """Where a queued run stands in the fair queue and about how long until it starts (None: not queued)."""
        runs = self.store.list()
        queued = [r for r in runs if r.status == Status.QUEUED]
        order = fair_order(queued, [r for r in runs if r.status != Status.QUEUED])
        if run_id not in {r.id for r in order}:
            return None
        left = {r.id: self._seconds_left(r) for r in runs if r.status == Status.RUNNING}
        return queue_wait(run_id, order, left, runs, self.capacity())

    def _seconds_left(self, run: Run) -> float | None:
        last = self.store.last_metric(run.id)
        if not last or not last.get("total_steps") or not last.get("step"):
            return None
        done = float(last["step"]) / float(last["total_steps"])
        return float(last["elapsed"]) * (1 - done) / max(done, 1e-9)

    def submit_sweep(
        self, sweep: SweepConfig, address: str | None = None, storage: str | None = None, owner: Person = LOCAL
    ) -> str:
        """Queue ``owner``'s sweep (a ``SweepConfig``, validated: its trials are checked against the memory budget
        here); its driver starts when no other sweep runs. Returns the sweep id. Only an administrator picks a
        cluster or a storage place."""
        from cnn_core.sweeps.preflight import check_sweep

        operators = address_of(self.store)  # the lab's own cluster is everyone's, and its sweeps' default
        address = address or operators
        if (storage or (address and address != operators)) and not owner.admin:
            raise NotAllowed("only an administrator can send a sweep to a cluster or choose where Tune stores it")
        if sweep.data_dir is not None:
            server_folder(sweep.data_dir, owner)
        check_sweep(sweep, address or None)  # budget, dataset and data folder, before anything is queued
        self._check_data(sweep.dataset, None, owner)
        quotas.check_sweep(self.store, owner)
        sweep_id = self.store.sweeps.create(sweep, address=address or None, storage=storage or None, owner=owner.id)
        self._wake.set()
        return sweep_id

    def resume_sweep(self, sweep_id: str, by: Person | None = None) -> None:
        """Queue an interrupted, stopped or failed sweep again; its driver goes on from Tune's saved state."""
        if by is not None:
            quotas.check_sweep(self.store, by)
        self.store.sweeps.resume(sweep_id, by=by)
        self._wake.set()

    def stop_sweep(self, sweep_id: str, by: Person | None = None) -> None:
        """Cancel a queued sweep now; a running one ends its trials within seconds (they become ``stopped``)."""
        self.store.sweeps.request_stop(sweep_id, by)
        self._wake.set()

    def wait_sweep(self, sweep_id: str, timeout: float = 600) -> Sweep:
        """Block until a sweep ends (for scripts and tests); returns it."""
        return self._wait_until(
            lambda: self.store.sweeps.get(sweep_id), lambda s: not s.status.active, f"sweep {sweep_id}", timeout, 0.2
        )

    def driver_pid(self, sweep_id: str) -> int | None:
        with self._lock:
            proc = self._drivers.get(sweep_id)
            return proc.pid if proc is not None else None

    def running(self) -> list[str]:
        with self._lock:
            fresh = [run_id for run_id, proc in self._procs.items() if proc.poll() is None]
            return fresh + (list(self.pool.busy()) if self.pool is not None else [])

    def worker_pid(self, run_id: str) -> int | None:
        """The process training ``run_id`` here (a warm worker or a fresh one); None when none is."""
        with self._lock:
            if run_id in self._procs:
                return self._procs[run_id].pid
            worker = self.pool.busy().get(run_id) if self.pool is not None else None
            return worker.pid if worker is not None else None

    def pump(self) -> None:
        """Reap finished workers, then start queued runs while slots are free."""
        with self._lock:
            address = self._pinned or address_of(self.store)
            if address != self.address and not self._closed:
                self._use(address)
            for run_id, proc in list(self._procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self._procs[run_id]
                self._worker_ended(run_id, code)
            if self.pool is not None:
                for held, code in self.pool.reap(self.store):  # a dead warm worker is replaced below
                    if held is not None:
                        self._worker_ended(held, code)
            self._pump_sweeps()
            waiting = self.queue() if not self._closed else []
            if self.pool is not None and (waiting or (self._thread is not None and not self._closed)):
                self.pool.fill()  # the app's manager keeps its pool warm: a dead worker is replaced at once
            for run in waiting:
                if self.pool is not None:
                    free = self.pool.free()
                    if not free:
                        break
                elif len(self._procs) >= self.max_concurrent:
                    break
                if not self.store.claim(run.id):  # queued -> running here, so no other app starts it too
                    continue
                try:
                    if self.pool is not None:
                        free[0].give(run.id)
                    else:
                        self._procs[run.id] = self._spawn(run.id)
                except OSError as err:
                    self.store.fail(run.id, f"could not start a worker process: {err}")

    def _worker_ended(self, run_id: str, code: int) -> None:
        """A worker that died without recording its run's end (killed, crashed): the run is interrupted (by a
        signal) or failed, and keeps its last epoch's checkpoint."""
        if code == 0:
            return
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        self.store.interrupt(
            run_id,
            f"the worker {how}; the last epoch's checkpoint is kept",
            status=Status.INTERRUPTED if code < 0 else Status.FAILED,
        )

    def _pump_sweeps(self) -> None:
        """Reap sweep drivers; start the oldest queued sweep when none runs (called with the lock held)."""
        for sweep_id, proc in list(self._drivers.items()):
            code = proc.poll()
            if code is None:
                continue
            del self._drivers[sweep_id]
            if code != 0:  # the driver died without recording an end: finished trials stay, resume goes on
                how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
                self.store.sweeps.interrupt(
                    sweep_id,
                    f"the sweep's driver {how}; finished trials are kept, resume it to finish the rest",
                    status=SweepStatus.INTERRUPTED if code < 0 else SweepStatus.FAILED,
                )
        if self._drivers or self._closed:
            return
        for sweep in reversed(self.store.sweeps.list(status=(SweepStatus.QUEUED,))):
            if self.store.sweeps.claim(sweep.id):
                try:
                    self._drivers[sweep.id] = self._spawn_driver(sweep.id)
                except OSError as err:
                    self.store.sweeps.interrupt(sweep.id, f"could not start a sweep driver: {err}", SweepStatus.FAILED)
                    continue
                return

    def _spawn_driver(self, sweep_id: str) -> subprocess.Popen[bytes]:
        folder = self.store.sweeps.folder(sweep_id)
        folder.mkdir(parents=True, exist_ok=True)
        log = open(folder / "driver.log", "ab")
        cmd = [sys.executable, "-m", "cnn_core", "sweep-driver", sweep_id, "--runs-dir", str(self.store.root)]
        return subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # as a worker: a page rerun or Ctrl-C in the app's terminal never reaches it
        )

    def _spawn(self, run_id: str) -> subprocess.Popen[bytes]:
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
                    self.store.sweeps.mark_orphans(pid_alive)
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
        return self._wait_until(lambda: self.store.get(run_id), lambda r: r.finished, f"run {run_id}", timeout, 0.1)

    def _wait_until(
        self, get: Callable[[], _Item], done: Callable[[_Item], bool], what: str, timeout: float, interval: float
    ) -> _Item:
        """Poll ``get()`` (pumping the queue when no manager thread does) until ``done`` says it ended; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._thread is None:
                self.pump()
            item = get()
            if done(item):
                return item
            time.sleep(interval)
        raise TimeoutError(f"{what} still {item.status} after {timeout} s")

    def close(self, stop_runs: bool = False) -> None:
        """Stop the manager thread; running workers go on unless ``stop_runs`` (warm ones end after their run)."""
        self._closed = True
        self._wake.set()
        if stop_runs:
            for run_id in self.running():
                self.stop(run_id)
            with self._lock:
                sweeps = list(self._drivers)
            for sweep_id in sweeps:
                self.stop_sweep(sweep_id)
        if self.pool is not None:
            with self._lock:
                self.pool.close()
