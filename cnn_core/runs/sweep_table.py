"""The sweeps table: the one owner of a sweep's life, beside the runs its trials become.

Written by the sweep's driver (and, for a dead driver, by whoever notices), read by everyone; the same
SQLite rules as the runs: short ``BEGIN IMMEDIATE`` writes through ``RunStore.transaction``.
"""

from __future__ import annotations

import builtins
import json
import secrets
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable, Protocol

from cnn_core.config.sweep import Invalid, SweepConfig
from cnn_core.errors import NotAllowed, RunNotFound
from cnn_core.files import atomic_write
from cnn_core.people import LOCAL_ID, Person
from cnn_core.runs.run import Run, Status, owner_filter
from cnn_core.runs.sweep_record import SWEEP_ACTIVE, SWEEP_ID, SWEEP_RESUMABLE, Sweep, SweepStatus, SweepTrial
from cnn_core.safetext import escape_controls


class Runs(Protocol):
    """What the sweeps table needs of the ``RunStore`` it lives in (a protocol, so the store can own the table
    without the two modules importing each other)."""

    @property
    def root(self) -> Path: ...
    def transaction(self, write: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...
    def interrupt(self, run_id: str, error: str) -> None: ...
    def list(self, status: tuple[Status, ...] | None = None, group: str | None = None) -> builtins.list[Run]: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, spec TEXT NOT NULL,
    created REAL NOT NULL, started REAL, finished REAL, heartbeat REAL, pid INTEGER,
    address TEXT, storage TEXT, cluster TEXT, invalid TEXT, error TEXT, stop_requested INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sweep_trials (
    sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE, trial_id TEXT NOT NULL,
    run_id TEXT NOT NULL, params TEXT NOT NULL, seed INTEGER NOT NULL, node TEXT,
    PRIMARY KEY (sweep_id, trial_id)
);
"""
TABLES = frozenset({"sweeps", "sweep_trials"})
_WRITABLE = frozenset({"status", "started", "finished", "heartbeat", "pid", "cluster", "invalid", "error"})
_WRITABLE |= {"stop_requested", "address", "storage", "shared"}


class SweepTable:
    """Sweeps and their trials in a ``RunStore``'s database (``store.sweeps``)."""

    def __init__(self, store: Runs) -> None:
        self.store = store

    def folder(self, sweep_id: str) -> Path:
        """A sweep's folder (spec, driver log, Tune's default storage); the id is checked first."""
        if not isinstance(sweep_id, str) or not SWEEP_ID.fullmatch(sweep_id):
            raise RunNotFound(f"{escape_controls(str(sweep_id))!r} is not a sweep id")
        return self.store.root / "sweeps" / sweep_id

    def get(self, sweep_id: str, visible_to: Person | None = None) -> Sweep:
        """A sweep by id; another person's private sweep is answered exactly like a missing one."""
        self.folder(sweep_id)
        with self.store.transaction() as con:
            row = con.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None or (visible_to is not None and not visible_to.may_see(row["owner"], bool(row["shared"]))):
            raise RunNotFound(f"no sweep {sweep_id!r}")
        return Sweep.from_row(row)

    def get_to_change(self, sweep_id: str, by: Person | None) -> Sweep:
        """A sweep ``by`` may stop, resume or share: their own, or any for an administrator."""
        sweep = self.get(sweep_id, visible_to=by)
        if by is not None and not by.may_change(sweep.owner):
            raise NotAllowed(
                f"sweep “{sweep.label}” is shared with you: only its owner or an administrator can change it"
            )
        return sweep

    def list(
        self,
        status: tuple[SweepStatus, ...] | None = None,
        visible_to: Person | None = None,
        owner: str | None = None,
    ) -> list[Sweep]:
        """All sweeps, newest first (optionally only those with the given statuses, a person may see, or one
        owner's)."""
        where, args = owner_filter(visible_to, owner)
        if status:
            where.append(f"status IN ({', '.join('?' * len(status))})")
            args += list(status)
        query = "SELECT * FROM sweeps" + (" WHERE " + " AND ".join(where) if where else "")
        with self.store.transaction() as con:
            return [Sweep.from_row(r) for r in con.execute(query + " ORDER BY created DESC, id DESC", args)]

    def trials(self, sweep_id: str) -> builtins.list[SweepTrial]:
        with self.store.transaction() as con:
            rows = con.execute("SELECT * FROM sweep_trials WHERE sweep_id = ? ORDER BY rowid", (sweep_id,))
            return [SweepTrial(r["trial_id"], r["run_id"], json.loads(r["params"]), r["seed"], r["node"]) for r in rows]

    def stop_requested(self, sweep_id: str) -> bool:
        with self.store.transaction() as con:
            row = con.execute("SELECT stop_requested FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        return bool(row and row[0])

    # -- a sweep's life ------------------------------------------------------------------------------------------

    def create(
        self,
        config: SweepConfig,
        address: str | None = None,
        storage: str | None = None,
        claim: bool = False,
        owner: str = LOCAL_ID,
    ) -> str:
        """Register a sweep, queued for the job manager (or, with ``claim``, running for the caller); its id."""
        sweep_id = "sweep-" + time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        folder = self.folder(sweep_id)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "spec.json", config.to_json().encode("utf-8"))  # whole or not at all
        now = time.time()
        status, started = (SweepStatus.RUNNING, now) if claim else (SweepStatus.QUEUED, None)
        with self.store.transaction(write=True) as con:
            con.execute(
                "INSERT INTO sweeps (id, name, status, spec, created, started, heartbeat, address, storage, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sweep_id, config.label[:100], status, config.to_json(), now, started, started, address, storage)
                + (owner,),
            )
        return sweep_id

    def claim(self, sweep_id: str) -> bool:
        """Queued → running, atomically; False if someone else took it (or it was stopped)."""
        now = time.time()
        return self._set(sweep_id, (SweepStatus.QUEUED,), status=SweepStatus.RUNNING, started=now, heartbeat=now)

    def start(self, sweep_id: str, pid: int, cluster: dict[str, Any]) -> None:
        """The driver records itself and what it found of Ray."""
        self._set(sweep_id, (SweepStatus.RUNNING,), pid=pid, cluster=json.dumps(cluster), heartbeat=time.time())

    def beat(self, sweep_id: str) -> None:
        self._set(sweep_id, SWEEP_ACTIVE, heartbeat=time.time())

    def add_invalid(self, sweep_id: str, invalid: builtins.list[Invalid]) -> None:
        """Configurations skipped with their reason (all at once for a grid; as drawn for Optuna)."""
        known = list(self.get(sweep_id).invalid)
        rows = [{"params": i.params, "reason": i.reason} for i in [*known, *invalid]]
        self._set(sweep_id, None, invalid=json.dumps(rows))

    def add_trial(self, sweep_id: str, trial_id: str, run_id: str, params: dict[str, Any], seed: int) -> None:
        """Tie a Tune trial to the run recording it (replacing the run of an earlier, interrupted attempt)."""
        with self.store.transaction(write=True) as con:
            con.execute(
                "INSERT OR REPLACE INTO sweep_trials (sweep_id, trial_id, run_id, params, seed) VALUES (?, ?, ?, ?, ?)",
                (sweep_id, trial_id, run_id, json.dumps(params), seed),
            )

    def set_node(self, sweep_id: str, trial_id: str, node: str) -> None:
        with self.store.transaction(write=True) as con:
            con.execute(
                "UPDATE sweep_trials SET node = ? WHERE sweep_id = ? AND trial_id = ?", (node, sweep_id, trial_id)
            )

    def finish(self, sweep_id: str, status: SweepStatus, error: str | None = None) -> None:
        """The driver ends its sweep: completed, stopped or failed."""
        self._set(sweep_id, SWEEP_ACTIVE, status=status, finished=time.time(), error=error)

    def interrupt(self, sweep_id: str, error: str, status: SweepStatus = SweepStatus.INTERRUPTED) -> None:
        """End an active sweep from outside its driver; its unfinished trials become interrupted runs."""
        if self._set(sweep_id, SWEEP_ACTIVE, status=status, finished=time.time(), error=error):
            # its trials, and a run the driver created but had not yet listed as one when it died
            runs = {t.run_id for t in self.trials(sweep_id)} | {r.id for r in self.store.list(group=sweep_id)}
            for run_id in sorted(runs):
                self.store.interrupt(run_id, "the sweep's driver stopped before this trial finished")

    def share(self, sweep_id: str, shared: bool, by: Person | None = None) -> None:
        """Show a sweep and its trials to everyone, or to its owner (and administrators) only again."""
        self.get_to_change(sweep_id, by)
        with self.store.transaction(write=True) as con:
            con.execute("UPDATE sweeps SET shared = ? WHERE id = ?", (int(shared), sweep_id))
            con.execute("UPDATE runs SET shared = ? WHERE group_id = ?", (int(shared), sweep_id))

    def request_stop(self, sweep_id: str, by: Person | None = None) -> None:
        """Ask a sweep to stop; a queued one is cancelled at once, a running one within seconds."""
        self.get_to_change(sweep_id, by)
        self._set(sweep_id, (SweepStatus.QUEUED,), status=SweepStatus.STOPPED, finished=time.time())
        self._set(sweep_id, None, stop_requested=1)

    def resume(self, sweep_id: str, claim: bool = False, by: Person | None = None) -> None:
        """An interrupted, stopped or failed sweep goes on: queued again (or running, for the caller)."""
        sweep = self.get_to_change(sweep_id, by)
        if sweep.status not in SWEEP_RESUMABLE:
            from cnn_core.errors import RunBusy

            raise RunBusy(f"sweep {sweep_id} is {sweep.status}; only an interrupted, stopped or failed one resumes")
        now = time.time()
        status, started = (SweepStatus.RUNNING, now) if claim else (SweepStatus.QUEUED, None)
        self._set(
            sweep_id, SWEEP_RESUMABLE, status=status, started=started, heartbeat=started, finished=None, error=None
        )
        self._set(sweep_id, None, stop_requested=0, pid=None)

    def mark_orphans(self, is_alive: Callable[[int], bool], stale_after: float = 120.0) -> builtins.list[str]:
        """Sweeps left ``running`` by a dead driver become ``interrupted``."""
        changed, now = [], time.time()
        for sweep in self.list(status=(SweepStatus.RUNNING,)):
            dead = (
                not is_alive(sweep.pid)
                if sweep.pid is not None
                else (sweep.heartbeat or sweep.started or sweep.created) < now - stale_after
            )
            if dead:
                self.interrupt(sweep.id, "the sweep's driver stopped before the sweep finished; resume it")
                changed.append(sweep.id)
        return changed

    def _set(self, sweep_id: str, only_if: tuple[SweepStatus, ...] | None, **values: Any) -> bool:
        self.folder(sweep_id)
        bad = set(values) - _WRITABLE
        if bad:
            raise TypeError(f"not a sweep column: {', '.join(sorted(bad))}")
        columns = ", ".join(f"{k} = ?" for k in values)
        where, args = "id = ?", [*values.values(), sweep_id]
        if only_if:
            where += f" AND status IN ({', '.join('?' * len(only_if))})"
            args += list(only_if)
        with self.store.transaction(write=True) as con:
            return con.execute(f"UPDATE sweeps SET {columns} WHERE {where}", args).rowcount == 1
