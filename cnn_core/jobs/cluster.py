"""Runs on a Ray cluster: every run, not only sweeps, once the lab has a cluster.

Where runs go is ``bridge.address_of(store)``: the address an administrator set in the app, else ``RAY_ADDRESS``;
with none they train on this machine's warm workers (``pool.py``).

Two sides, so that the run store keeps one writer and a node needs no disk shared with this machine:

- On a node, ``_train_on_node`` (a Ray task that is a streaming generator, with the run's CPU and GPU request)
  trains with the one loop and yields what the store must record: where it started (node, pid, device), every
  metric event, each epoch's checkpoint and training state as file bytes, and how it ended with its final files.
  It never opens the run store; the data comes through Ray's object store.
- Here, ``ClusterRuns`` is that one writer: in the job manager's bridge process (``cnn-lab cluster-bridge``,
  ``serve``) for the app, or in ``cnn-lab train --address`` itself. It submits claimed runs, writes what comes back
  into each run's folder and the store as it comes (the pages' live curves read it there), forwards Stop, and
  marks a run ``interrupted`` when its worker or node dies: its last epoch's checkpoint and training state had
  already come back, so it resumes (``JobManager.resume``, ``cnn-lab resume``) from there.

How many runs the cluster takes at once follows its free resources (``ClusterRuns.slots``): the bridge reports
them and the job manager hands it that many runs from the fair queue, so owners, quotas and the queue's order are
the same as on this machine.
"""

from __future__ import annotations

import json
import math
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import ray
import torch

from cnn_core.config import RunConfig, budget
from cnn_core.data import Dataset, check_fits
from cnn_core.errors import CnnLabError
from cnn_core.files import atomic_write
from cnn_core.jobs.bridge import run_resources
from cnn_core.runs import Run, RunStore
from cnn_core.runs.runner import (
    failure_message,
    record_end,
    recorder,
    save_epoch,
    save_final,
    saved_state,
    summary_of,
)
from cnn_core.runs.store import EPOCHS, TRAIN_STATE
from cnn_core.runs.warm import DataCache
from cnn_core.training.loop import Event, Outcome, run_device_label, train
from cnn_core.training.state import TrainState, load_state

if TYPE_CHECKING:
    from ray.actor import ActorHandle

WHERE_FILE = "node.json"  # in a run's folder: the node, address and pid that trained it
STOP_POLL_SECONDS = 0.25
MAX_SLOTS = 256
WARM_MOST = 8  # Ray workers the bridge warms up as it starts


# -- what a run asks of the cluster ----------------------------------------------------------------------------


def request_for(run: RunConfig, cluster_gpus: float) -> dict[str, float]:
    """A run's Ray resource request: ``CNN_LAB_RUN_CPUS`` cores (default 1) and, on a cluster with GPUs and unless
    the run asks for the CPU, ``CNN_LAB_RUN_GPUS`` of a GPU (default half)."""
    cpus, gpus = run_resources()
    wants_gpu = cluster_gpus > 0 and run.train.device in ("auto", "cuda")
    return {"num_cpus": cpus, "num_gpus": gpus if wants_gpu else 0.0}


def slots_for(free: dict[str, float], request: dict[str, float]) -> int:
    """How many runs asking for ``request`` fit in the resources ``free``."""
    counts = [MAX_SLOTS]
    for resource, key in (("CPU", "num_cpus"), ("GPU", "num_gpus")):
        if request[key] > 0:
            counts.append(math.floor(free.get(resource, 0.0) / request[key] + 1e-9))
    return max(0, min(counts))


# -- on a node --------------------------------------------------------------------------------------------------

Message = tuple[Any, ...]


@ray.remote(num_cpus=0)
class _Stops:
    """The runs someone asked to stop, for the nodes to ask about (one per writer; it costs no CPU)."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def stop(self, run_id: str) -> None:
        self.asked.add(run_id)

    def stopped(self, run_id: str) -> bool:
        return run_id in self.asked


@ray.remote(max_retries=0, num_returns="streaming")
def _train_on_node(record: Run, data: Dataset, state: bytes | None, stops: ActorHandle[Any]) -> Iterator[Message]:
    """Train ``record`` on this node, yielding what the writer records (see the module docstring)."""
    node = ray.get_runtime_context().get_node_id()
    yield ("start", {"node": node, "pid": os.getpid(), "device": run_device_label(record.config.train)})
    yield from node_messages(record, data, state, _asker(stops, record.id))


@ray.remote(max_retries=0)
def _warm_node() -> str:
    """What a first run on a fresh Ray worker would otherwise pay (importing torch, the optimizer's first step):
    the bridge runs one per slot as it starts, and Ray gives later tasks these worker processes."""
    from cnn_core.runs.warm import warm_up

    warm_up()
    return ray.get_runtime_context().get_node_id()


def _asker(stops: ActorHandle[Any], run_id: str) -> Callable[[], bool]:
    last = [0.0, False]

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last[0] >= STOP_POLL_SECONDS:
            last[0] = now
            try:
                last[1] = bool(ray.get(stops.stopped.remote(run_id), timeout=10))
            except ray.exceptions.RayError:  # the writer is gone: its run is marked interrupted there
                last[1] = True
        return bool(last[1])

    return should_stop


def node_messages(
    record: Run, data: Dataset, state: bytes | None, should_stop: Callable[[], bool]
) -> Iterator[Message]:
    """Train with the one loop in a thread and yield its messages as they come: ``("event", Event)``,
    ``("epoch", n, files)``, then ``("end", summary, files, final)`` or ``("failed", one_line)``. ``files`` maps a
    path inside the run's folder to its bytes."""
    out: queue.Queue[Message | None] = queue.Queue()
    with tempfile.TemporaryDirectory(prefix="cnn-lab-run-") as tmp:
        folder = Path(tmp)

        def on_epoch_end(model: Any, event: Event, train_state: TrainState) -> None:
            save_epoch(folder, record, data, model, event, train_state)
            out.put(("epoch", event.epoch, _take_files(folder)))

        threads = torch.get_num_threads()  # a new thread may start with another count: same sums as the caller's

        def work() -> None:
            torch.set_num_threads(threads)
            try:
                run = record.config
                check_fits(data, run.model)
                budget.check(run, train_images=len(data.train_y))
                resume = _state(folder, state) if state is not None else None
                result = train(
                    run,
                    data,
                    on_event=lambda event: out.put(("event", event)),
                    should_stop=should_stop,
                    on_epoch_end=on_epoch_end,
                    resume=resume,
                )
                final = None if result.status == Outcome.DIVERGED else save_final(folder, record, data, result)
                out.put(("end", summary_of(result), _take_files(folder), final.name if final else None))
            except Exception as err:
                line = failure_message(err, record.config, f"run {record.id} on a cluster node")
                out.put(("failed", line or f"{type(err).__name__}: {err}"[:500]))
            finally:
                out.put(None)

        threading.Thread(target=work, name=f"cnn-lab-run-{record.id}", daemon=True).start()
        while (message := out.get()) is not None:
            yield message


def _state(folder: Path, state: bytes) -> TrainState:
    path = folder / "resume.safetensors"
    path.write_bytes(state)
    try:
        return load_state(path)
    finally:
        path.unlink()


def _take_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), removed from it; the training state last, so that the
    writer saves it after the epoch's checkpoint, as a run here does."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: (p.name == TRAIN_STATE, str(p)))
    taken = {str(p.relative_to(folder)): p.read_bytes() for p in files}
    for path in files:
        path.unlink()
    return taken


# -- here: the one writer ---------------------------------------------------------------------------------------


class ClusterRuns:
    """Runs of one run store on the Ray cluster at ``address`` (``ray.init`` happens here)."""

    def __init__(self, store: RunStore, address: str) -> None:
        from cnn_core.sweeps.driver import start_ray

        self.store, self.address = store, address
        self.cluster = start_ray(address)  # one line (ClusterUnreachable) when it is not there
        self.stops = _Stops.remote()  # type: ignore[attr-defined]
        self._cache = DataCache()
        self._refs: dict[int, tuple[Dataset, Any]] = {}  # id(data) -> (data, its object in Ray's store)
        self._lock, self._loading = threading.Lock(), threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._following: set[str] = set()
        self._waiting: set[str] = set()  # submitted, not started on a node yet
        self._stopped: set[str] = set()
        self._closed = threading.Event()
        threading.Thread(target=self._watch_stops, name="cnn-lab-stops", daemon=True).start()

    def launch(self, run_id: str) -> None:
        """Follow a claimed run in a thread of its own (the bridge's many runs at once)."""
        with self._lock:
            self._waiting.add(run_id)
        thread = threading.Thread(target=self.follow, args=(run_id,), name=f"cnn-lab-{run_id}", daemon=True)
        self._threads[run_id] = thread
        thread.start()

    def follow(self, run_id: str, data: Dataset | None = None, on_event: Callable[[Event], None] | None = None) -> Run:
        """Train a claimed run on the cluster and record it to its end; the run as it ended."""
        record = self.store.get(run_id)
        with self._lock:
            self._waiting.add(run_id)
            self._following.add(run_id)
        try:
            state = None
            if record.resumed_from:
                saved_state(self.store, record)  # the epoch it is for, checked: one line if it does not match
                state = self.store.train_state(run_id).read_bytes()
            if data is None:
                with self._loading:  # one load at a time: two runs of one dataset share it
                    data = self._cache.get(record.dataset, record.data_dir, record.config.train.val_fraction)
            request = request_for(record.config, self.cluster["gpus"])
            stream: Any = _train_on_node.options(**request).remote(record, self._put(data), state, self.stops)
        except Exception as err:
            line = failure_message(err, record.config, f"run {run_id} in {self.store.root}")
            self.store.fail(run_id, line or f"{type(err).__name__}: {err}"[:500])
            return self._done(run_id)
        listener = recorder(self.store, run_id, on_event)
        try:
            for ref in stream:
                self._record(record, ray.get(ref), listener)
        except ray.exceptions.RayTaskError as err:  # raised in the task itself, not in the loop: a bug
            self.store.fail(run_id, f"{type(err.cause).__name__}: {err.cause}"[:500])
        except ray.exceptions.RayError as err:  # its worker or node died, or the cluster went away
            why = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            self.store.interrupt(run_id, f"its Ray worker was lost ({why}); the last epoch's checkpoint is kept")
        except BaseException as err:  # Ctrl-C or a signal here: the task ends with this process's Ray connection
            self.store.interrupt(run_id, f"interrupted ({type(err).__name__}); the last epoch's checkpoint is kept")
            self._done(run_id)
            raise
        if self.store.get(run_id).status.active:  # the stream ended with no end: nothing on the node said why
            self.store.interrupt(run_id, "its Ray task ended before the run did; the last epoch's checkpoint is kept")
        return self._done(run_id)

    def _put(self, data: Dataset) -> Any:
        """Each dataset goes into Ray's object store once, for all its runs."""
        with self._lock:
            if id(data) not in self._refs:
                if len(self._refs) >= self._cache.keep:
                    self._refs.pop(next(iter(self._refs)))
                self._refs[id(data)] = (data, ray.put(data))
            return self._refs[id(data)][1]

    def _record(self, record: Run, message: Message, listener: Callable[[Event], None]) -> None:
        if message[0] == "start":
            with self._lock:
                self._waiting.discard(record.id)
        record_message(self.store, record, message, listener, self.address)

    def _done(self, run_id: str) -> Run:
        with self._lock:
            self._waiting.discard(run_id)
            self._following.discard(run_id)
            self._stopped.discard(run_id)
        return self.store.get(run_id)

    def _watch_stops(self) -> None:
        """Pass each Stop pressed on a run this follows to its node (which asks every quarter second)."""
        while not self._closed.wait(STOP_POLL_SECONDS):
            with self._lock:
                asked = [r for r in self._following if r not in self._stopped]
            for run_id in asked:
                try:
                    if self.store.stop_requested(run_id):
                        with self._lock:
                            self._stopped.add(run_id)
                        self.stops.stop.remote(run_id)
                except (CnnLabError, ray.exceptions.RayError) as err:  # a locked store, a lost cluster: next time
                    print(f"cnn-lab: could not pass on a stop: {err}", file=sys.stderr)

    def close(self) -> None:
        """Leave the cluster (a task still running there ends with this connection)."""
        from cnn_core.sweeps.driver import stop_ray

        self._closed.set()
        stop_ray()

    def running(self) -> list[str]:
        return [run_id for run_id, thread in list(self._threads.items()) if thread.is_alive()]

    def ended(self) -> list[str]:
        """Runs whose thread finished since the last call (the bridge reports them)."""
        done = [run_id for run_id, thread in list(self._threads.items()) if not thread.is_alive()]
        for run_id in done:
            del self._threads[run_id]
        return done

    def warm(self, most: int = WARM_MOST) -> int:
        """Warm up one Ray worker per run the cluster holds now (at most ``most``), and the default dataset here (the
        bundled MNIST sample, in Ray's object store: 1.8 s for the first run otherwise); how many workers."""
        count = min(most, self.slots())
        request, default = request_for(RunConfig(), self.cluster["gpus"]), RunConfig().train
        warming = [_warm_node.options(**request).remote() for _ in range(count)]
        with self._loading:
            self._put(self._cache.get("mnist", None, default.val_fraction))
        ray.get(warming)
        return count

    def slots(self) -> int:
        """How many more runs the cluster's free resources take now, less those submitted and not yet started."""
        free = ray.available_resources()  # type: ignore[no-untyped-call]
        with self._lock:
            waiting = len(self._waiting)
        return max(0, slots_for(free, request_for(RunConfig(), self.cluster["gpus"])) - waiting)


def record_message(
    store: RunStore, record: Run, message: Message, listener: Callable[[Event], None], address: str
) -> None:
    """Write one of a node's messages (``node_messages``) into the store and the run's folder, as a run trained
    here records the same thing; ``listener`` is ``runner.recorder``'s."""
    kind, run_id, folder = message[0], record.id, store.run_dir(record.id)
    if kind == "start":
        where = message[1]
        store.start(run_id, os.getpid(), where["device"], node=where["node"])
        atomic_write(folder / WHERE_FILE, json.dumps({"address": address, **where}).encode())
    elif kind == "event":
        listener(message[1])
    elif kind == "epoch":
        _write_files(folder, message[2])
        store.record_epoch(run_id, message[1], folder / EPOCHS / f"epoch_{message[1]:03d}.safetensors")
    elif kind == "end":
        _write_files(folder, message[2])
        record_end(store, run_id, message[1], folder / message[3] if message[3] else None)
    elif kind == "failed":
        store.fail(run_id, message[1])


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    """A node's files into a run's folder, each whole or not at all; a path that would leave it is refused."""
    root = folder.resolve()
    for name, content in files.items():
        target = (root / name).resolve()
        if not target.is_relative_to(root):
            raise CnnLabError(f"a node sent a file outside its run's folder: {name[:100]!r}")
        atomic_write(target, content)


def serve(store: RunStore, address: str, lines: Iterable[str], out: TextIO = sys.stdout) -> None:
    """The job manager's bridge: run ids on ``lines`` (its standard input) go to the cluster. It says ``ready``
    with what it joined, ``slots N`` whenever the cluster's room changes and ``done RUN_ID`` after each run; it
    ends once its input is closed and its runs have ended."""
    runs = ClusterRuns(store, address)
    runs.warm()  # before "ready": the first run the app gives it starts as fast as the next
    given: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in lines:
            if line.strip():
                given.put(line.strip())
        given.put(None)

    threading.Thread(target=read, name="cnn-lab-bridge-input", daemon=True).start()
    print("ready", json.dumps(runs.cluster), file=out, flush=True)
    last, closing = -1, False
    try:
        while not closing or runs.running():
            try:
                run_id = given.get(timeout=STOP_POLL_SECONDS)
                if run_id is None:
                    closing = True
                else:
                    runs.launch(run_id)
            except queue.Empty:
                pass
            for run_id in runs.ended():
                print("done", run_id, file=out, flush=True)
            slots = runs.slots()
            if slots != last:
                print("slots", slots, file=out, flush=True)
                last = slots
    finally:
        runs.close()
