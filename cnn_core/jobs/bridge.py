"""The job manager's side of a Ray cluster: where runs go, and the bridge process that sends them there.

``address_of(store)`` is the cluster every run goes to: the one an administrator chose in the app
(``set_address``: ``cluster.json`` in the run store's folder), else ``RAY_ADDRESS``; None: this machine's warm
workers. With one, the job manager keeps a ``ClusterBridge`` instead of its warm pool, with the same few methods
(fill, reap, free, busy, close), so its fair queue, owners and quotas are the same for both: it is
``python -m cnn_core cluster-bridge`` (``cluster.serve``), one process with one Ray connection for all the runs
it is given on its standard input, and the one writer of what they record. It reports the cluster's free room
(``slots N``) and each run's end (``done RUN_ID``) on its standard output. A bridge that cannot join the cluster
says why in ``bridge.log`` (``error`` here, for the Admin page) and is tried again a little later; the runs wait
in the queue meanwhile. A bridge that dies takes its runs' Ray tasks with it: they become ``interrupted``.

This module never imports Ray: the app starts without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from cnn_core.errors import NotAllowed
from cnn_core.files import atomic_write
from cnn_core.people import Person
from cnn_core.runs import RunStore

SETTINGS_FILE = "cluster.json"  # in the run store's folder: the cluster an administrator chose in the app
LOG_FILE = "bridge.log"
RETRY_SECONDS = 15.0  # after a bridge that could not join the cluster
CPUS_PER_RUN = 1.0  # a LeNet-sized run keeps one core busy
GPUS_PER_RUN = 0.5  # two runs share a GPU (small models leave it idle)


def address_of(store: RunStore) -> str | None:
    """The Ray cluster every run goes to: the app's setting, else ``RAY_ADDRESS``; None: this machine."""
    return chosen_address(store) or os.environ.get("RAY_ADDRESS") or None


def chosen_address(store: RunStore) -> str | None:
    """The cluster an administrator chose in the app; None when none is chosen."""
    try:
        chosen = json.loads((store.root / SETTINGS_FILE).read_text()).get("address")
    except (OSError, ValueError, AttributeError):
        return None
    return chosen.strip() or None if isinstance(chosen, str) else None


def set_address(store: RunStore, address: str | None, by: Person) -> None:
    """An administrator sends every run to the cluster at ``address`` (checked first: it must answer as Ray
    does), or back to this machine (None or empty; ``RAY_ADDRESS``, if set, applies again)."""
    from cnn_core.sweeps.driver import check_reachable
    from cnn_core.sweeps.preflight import check_address

    if not by.admin:
        raise NotAllowed("only an administrator can choose where runs train")
    address = (address or "").strip() or None
    if address is not None:
        check_address(address)
        check_reachable(address)
    atomic_write(store.root / SETTINGS_FILE, json.dumps({"address": address}).encode())


def run_resources() -> tuple[float, float]:
    """What each run asks of a cluster: CPUs (``CNN_LAB_RUN_CPUS``) and the share of a GPU it takes where the
    cluster has GPUs (``CNN_LAB_RUN_GPUS``)."""
    cpus = float(os.environ.get("CNN_LAB_RUN_CPUS") or CPUS_PER_RUN)
    return cpus, float(os.environ.get("CNN_LAB_RUN_GPUS") or GPUS_PER_RUN)


class _Slot:
    """Room for one more run on the cluster: ``give`` sends it one."""

    def __init__(self, bridge: ClusterBridge) -> None:
        self.bridge = bridge

    def give(self, run_id: str) -> None:
        self.bridge.give(run_id)


class ClusterBridge:
    """The bridge process for the run store at ``root`` and the cluster at ``address`` (see the module)."""

    def __init__(self, root: Path, address: str) -> None:
        self.root, self.address = root, address
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs: set[str] = set()  # given and not yet ended
        self.slots = 0  # the room it last reported, less the runs given since
        self.info: dict[str, Any] | None = None  # what it joined: nodes, CPUs, GPUs
        self.error: str | None = None  # why the last one could not join or ended badly
        self.started = 0
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._stdin: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def size(self) -> int:
        """How many runs the whole cluster holds at once (the queue's wait estimate), at least one."""
        total = float((self.info or {}).get("cpus", 1))
        return max(1, int(total // run_resources()[0]))

    def fill(self) -> None:
        """Start the bridge if none runs (not again within ``RETRY_SECONDS`` of one that could not join)."""
        if self.proc is not None or time.monotonic() < self._retry_at:
            return
        log = open(self.root / LOG_FILE, "ab")
        cmd = [sys.executable, "-m", "cnn_core", "cluster-bridge", "--address", self.address]
        cmd += ["--runs-dir", str(self.root)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        log.close()
        self.proc, self._stdin, self.slots, self.info = proc, proc.stdin, 0, None
        self.started += 1
        threading.Thread(target=self._read, args=(proc,), name="cnn-lab-bridge", daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            word, _, rest = raw.decode(errors="replace").strip().partition(" ")
            with self._lock:
                if proc is not self.proc:
                    return
                if word == "ready":
                    self.info, self.error = json.loads(rest), None
                elif word == "slots" and rest.isdigit():
                    self.slots = int(rest)
                elif word == "done":
                    self.runs.discard(rest)

    def reap(self, store: RunStore) -> list[tuple[str | None, int]]:
        """A dead bridge: (each run it held, its exit code), and a new one at the next ``fill``; while it lives,
        forget the runs the store says ended."""
        if self.proc is None:
            return []
        code = self.proc.poll()
        if code is None:
            with self._lock:
                self.runs = {run_id for run_id in self.runs if not store.get(run_id).finished}
            return []
        with self._lock:
            held, joined = sorted(self.runs), self.info is not None
            self.proc, self._stdin, self.runs, self.slots = None, None, set(), 0
        if code != 0:
            self.error = _last_line(self.root / LOG_FILE) or f"the cluster bridge exited with status {code}"
            if not joined:
                self._retry_at = time.monotonic() + RETRY_SECONDS
        return [(run_id, code) for run_id in held] or [(None, code)]

    def free(self) -> list[_Slot]:
        with self._lock:
            ready = self.proc is not None and self.info is not None
            return [_Slot(self)] * self.slots if ready else []

    def give(self, run_id: str) -> None:
        """Hand it a claimed run."""
        with self._lock:
            if self._stdin is None:
                raise OSError("the cluster bridge is not running")
            self._stdin.write(f"{run_id}\n".encode())
            self._stdin.flush()
            self.runs.add(run_id)
            self.slots = max(0, self.slots - 1)

    def busy(self) -> dict[str, ClusterBridge]:
        with self._lock:
            return {run_id: self for run_id in self.runs}

    def close(self) -> None:
        """No more runs: it ends once the runs it has have (its standard input is closed)."""
        with self._lock:
            stdin, self._stdin = self._stdin, None
        if stdin is not None:
            try:
                stdin.close()
            except OSError:
                pass


def _last_line(path: Path) -> str | None:
    """The last line of a log that says something (the bridge's one-line error)."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None
