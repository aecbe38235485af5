"""The run store: SQLite (WAL, busy timeout) plus one folder per run, and the one owner of a run's life.

One process writes a run while others (the app, other workers) read: WAL lets readers go on
during a write, every connection waits on a lock instead of failing, and writes are short
``BEGIN IMMEDIATE`` transactions. The folder is ``$CNN_LAB_RUNS`` or ``runs/`` in the project.

A run's life: queued → running → completed | stopped | diverged | failed | interrupted (| pruned, for
sweeps), and stopped | failed | interrupted → queued (or running) again to go on from its last saved epoch
(``resume``). Each transition is one method here and writes only what it owns. Every run folder also holds
``config.json`` (the run config, loadable with ``--config``), ``run.json`` (who it is and how it ended) and
``metrics.jsonl`` (one line per epoch), so a lost database can be rebuilt from the folders (``reimport``).
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from cnn_core import settings
from cnn_core.config import RunConfig
from cnn_core.errors import (
    BadRunStore,
    CannotResume,
    InvalidRunName,
    NotAllowed,
    RunBusy,
    RunNotFound,
    RunStoreLost,
)
from cnn_core.files import folder_bytes
from cnn_core.people import LOCAL_ID, Person
from cnn_core.runs.record import drop_epochs_after, epoch_number, read_folder, read_metrics, write_json
from cnn_core.runs.run import ACTIVE, RESUMABLE, RUN_ID, Run, Status, owner_filter
from cnn_core.runs.sweep_table import SCHEMA as SWEEP_SCHEMA
from cnn_core.runs.sweep_table import TABLES as SWEEP_TABLES
from cnn_core.runs.sweep_table import SweepTable
from cnn_core.safetext import escape_controls

SQLITE_MAGIC = b"SQLite format 3\x00"
EPOCHS, TRAIN_STATE = "epochs", "train_state.safetensors"  # a run folder's epoch checkpoints, and its state
MAX_NAME = 100

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL,
    dataset TEXT NOT NULL, data_dir TEXT, device TEXT, group_id TEXT,
    created REAL NOT NULL, started REAL, finished REAL, heartbeat REAL, pid INTEGER,
    epochs_done INTEGER DEFAULT 0, test_accuracy REAL, test_loss REAL, val_accuracy REAL,
    seconds REAL, images_per_s REAL, checkpoint TEXT, error TEXT, stop_requested INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, kind TEXT NOT NULL,
    epoch INTEGER, step INTEGER, loss REAL, accuracy REAL, val_loss REAL, val_accuracy REAL,
    lr REAL, images_per_s REAL, elapsed REAL, total_steps INTEGER
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, kind, step);
"""
    + SWEEP_SCHEMA
)
METRIC_FIELDS: tuple[str, ...]
METRIC_FIELDS = ("kind", "epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "images_per_s")
METRIC_FIELDS += ("elapsed", "total_steps")
_INSERT_METRIC = (
    f"INSERT INTO metrics (run_id, {', '.join(METRIC_FIELDS)}) VALUES (?, {', '.join('?' * len(METRIC_FIELDS))})"
)
RESULT_FIELDS: tuple[str, ...]
RESULT_FIELDS = ("epochs_done", "test_accuracy", "test_loss", "val_accuracy", "seconds", "images_per_s")
RESULT_FIELDS += ("checkpoint", "error")
# Columns added after the first release: (table, column, type). A store made by an older version gains them, and
# so does a new one: ``_SCHEMA`` need not list them. A store from before owners is the local owner's, nothing shared.
_ADDED_COLUMNS = (
    ("metrics", "total_steps", "INTEGER"),
    ("runs", "resumed_from", "INTEGER"),
    ("runs", "owner", "TEXT NOT NULL DEFAULT 'local'"),
    ("runs", "shared", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "priority", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "node", "TEXT"),
    ("sweeps", "owner", "TEXT NOT NULL DEFAULT 'local'"),
    ("sweeps", "shared", "INTEGER NOT NULL DEFAULT 0"),
)


def default_runs_dir() -> Path:
    return settings.runs_dir()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Runs and their metrics; safe to use from several processes at once.

    Opening reads only, unless the database is new or from an older version. A file that is not a
    CNN Lab store, a damaged, read-only or full one raises ``BadRunStore`` with one line; an empty or
    missing database beside existing run folders is never silently replaced (``reimport=True`` opens it anyway,
    then ``reimport()`` brings the folders back).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, reimport: bool = False) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()
        self.db_path = self.root / "runs.db"
        self.sweeps = SweepTable(self)  # sweeps and their trials, in the same database
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            size, head = (self.db_path.stat().st_size if self.db_path.exists() else 0), b""
            if size:
                with self.db_path.open("rb") as fh:
                    head = fh.read(16)
        except OSError as err:
            raise BadRunStore(f"cannot open the run store in {self.root}: {err.strerror}") from None
        if size and head != SQLITE_MAGIC:
            raise self._not_a_store("not an SQLite database")
        folders = [] if size else self.run_folders()
        if folders and not reimport:
            raise RunStoreLost(
                f"{self.db_path} is {'empty' if self.db_path.exists() else 'missing'} but {len(folders)} run "
                f"folder(s) are beside it: rebuild it from them with `cnn-lab runs --reimport`, or set CNN_LAB_RUNS"
            )
        self._prepare_schema()  # with ``reimport``, the caller then calls ``reimport()`` and reports what came back

    def _not_a_store(self, why: str) -> BadRunStore:
        return BadRunStore(f"{self.db_path} is not a CNN Lab run store ({why}); move it away or set CNN_LAB_RUNS")

    def _prepare_schema(self) -> None:
        with self.transaction() as con:
            try:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            except sqlite3.OperationalError as err:  # the file is fine, this process cannot open it
                raise BadRunStore(
                    f"cannot open the run store {self.db_path} ({err}): is its folder read-only? Make it writable "
                    "or set CNN_LAB_RUNS to another folder"
                ) from None
            except sqlite3.DatabaseError as err:
                raise self._not_a_store(str(err)) from None
            if tables and not tables & {"runs", "metrics"}:
                raise self._not_a_store(f"it holds other tables: {', '.join(sorted(tables))}")
            missing = [
                (t, c, kind)
                for t, c, kind in _ADDED_COLUMNS  # a new store too: the tables made below lack some of them
                if c not in {row[1] for row in con.execute(f"PRAGMA table_info({t})")}
            ]
            absolute = con.execute(_ABSOLUTE_CHECKPOINTS).fetchall() if "runs" in tables else []
            if (
                {"runs", "metrics"} | SWEEP_TABLES <= tables
                and not missing
                and not absolute
                and con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            ):
                return  # an up-to-date store: nothing to write
        with self.transaction() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)  # CREATE ... IF NOT EXISTS: two processes making one store may both run it
        with self.transaction(write=True) as con:  # one at a time: a column is added once, whoever comes first
            for table, column, kind in missing:
                if column not in {row[1] for row in con.execute(f"PRAGMA table_info({table})")}:  # not made yet
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            for run_id, path in absolute:  # a store from before paths were relative to it
                con.execute("UPDATE runs SET checkpoint = ? WHERE id = ?", (in_store(path, run_id), run_id))

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A short connection, the store's one way into its database (``write``: one ``BEGIN IMMEDIATE``
        transaction, committed on exit, rolled back on an exception); every SQLite failure becomes one
        ``BadRunStore`` line."""
        try:
            con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        except sqlite3.Error as err:
            raise BadRunStore(f"cannot open {self.db_path}: {err}") from None
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA busy_timeout=30000")
            con.execute("PRAGMA foreign_keys=ON")
            if write:
                con.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            else:
                yield con
        except sqlite3.DatabaseError as err:  # the first line only: SQLite may quote a whole damaged value
            why = escape_controls(str(err).splitlines()[0] if str(err) else type(err).__name__)[:160]
            raise BadRunStore(
                f"the run store {self.db_path} failed: {why} (read-only, full disk or damaged?)"
            ) from None
        finally:
            con.close()

    # -- reading -------------------------------------------------------------------------------------------------

    def run_dir(self, run_id: str) -> Path:
        """A run's folder; the id is checked first, so no path is ever built from a stranger's text."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            raise RunNotFound(f"{escape_controls(str(run_id))!r} is not a run id")
        return self.root / run_id

    def run_folders(self) -> list[Path]:
        """Folders named like a run id (``sweeps/`` and anything else beside them are not runs)."""
        return sorted(p for p in self.root.iterdir() if p.is_dir() and RUN_ID.fullmatch(p.name))

    def get(self, run_id: str, visible_to: Person | None = None) -> Run:
        """A run by id; for ``visible_to`` only one they may see: another person's private run is answered
        exactly like a missing one."""
        self.run_dir(run_id)
        with self.transaction() as con:
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None or (visible_to is not None and not visible_to.may_see(row["owner"], bool(row["shared"]))):
            raise RunNotFound(f"no run {run_id!r}")
        return self._located(Run.from_row(row))

    def get_to_change(self, run_id: str, by: Person | None) -> Run:
        """A run ``by`` may change (rename, stop, delete, share): their own, or any for an administrator."""
        run = self.get(run_id, visible_to=by)
        if by is not None and not by.may_change(run.owner):
            raise NotAllowed(f"“{run.label}” is shared with you: only its owner or an administrator can change it")
        return run

    def list(
        self,
        status: tuple[Status, ...] | None = None,
        group: str | None = None,
        visible_to: Person | None = None,
        owner: str | None = None,
    ) -> list[Run]:
        """All runs, newest first (optionally only those with the given statuses, of one group: a sweep, those
        a person may see, or one owner's)."""
        where, args = owner_filter(visible_to, owner)  # statuses are strings too
        if status:
            where.append(f"status IN ({', '.join('?' * len(status))})")
            args += list(status)
        if group is not None:
            where.append("group_id = ?")
            args.append(group)
        query = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        with self.transaction() as con:
            rows = con.execute(query + " ORDER BY created DESC, id DESC", args).fetchall()
        return [self._located(Run.from_row(r)) for r in rows]

    def metrics(self, run_id: str, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        args: tuple[str, ...]
        query, args = "SELECT * FROM metrics WHERE run_id = ?", (run_id,)
        if kind:
            query, args = query + " AND kind = ?", (run_id, kind)
        with self.transaction() as con:
            return [dict(r) for r in con.execute(query + " ORDER BY rowid", args)]

    def last_metric(self, run_id: str) -> dict[str, Any] | None:
        """The newest metric row (what a progress bar needs), without reading the whole history."""
        with self.transaction() as con:
            row = con.execute(
                "SELECT * FROM metrics WHERE run_id = ? ORDER BY rowid DESC LIMIT 1", (run_id,)
            ).fetchone()
        return dict(row) if row else None

    def stop_requested(self, run_id: str) -> bool:
        with self.transaction() as con:
            row = con.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def remove_partial_writes(self) -> builtins.list[Path]:
        """Temp files of checkpoint writes a crash interrupted, in the run folders only (never a user's files)."""
        from cnn_core.model.checkpoint import remove_partial_writes  # late: checkpoint imports torch

        return [path for folder in self.run_folders() for path in remove_partial_writes(folder)]

    def epoch_checkpoints(self, run_id: str) -> builtins.list[Path]:
        """Weights saved after each epoch, oldest first (the Filters page scrubs through them)."""
        return sorted((self.run_dir(run_id) / EPOCHS).glob("epoch_*.safetensors"))

    def train_state(self, run_id: str) -> Path:
        """Where a run keeps what going on after its last saved epoch needs (``training.TrainState``): one file,
        replaced each epoch, removed when the run completes or diverges."""
        return self.run_dir(run_id) / EPOCHS / TRAIN_STATE

    # -- a run's life --------------------------------------------------------------------------------------------

    def create(
        self,
        run: RunConfig,
        dataset: str,
        name: str | None = None,
        data_dir: str | None = None,
        group_id: str | None = None,
        claim: bool = False,
        owner: str = LOCAL_ID,
        shared: bool = False,
    ) -> str:
        """Register a run, queued for the job manager (or, with ``claim``, running for the caller); its id."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        name = (
            _clean_name(name) if name and name.strip() else f"{dataset}-{run.model.conv[0].pool}-seed{run.train.seed}"
        )
        status, now = (Status.RUNNING, time.time()) if claim else (Status.QUEUED, None)
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "config.json", run.to_dict())
        with self.transaction(write=True) as con:
            con.execute(
                "INSERT INTO runs (id, name, status, config, dataset, data_dir, group_id, created, started, heartbeat, "
                "owner, shared) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, name, status, run.to_json(), dataset, data_dir, group_id, time.time(), now, now)
                + (owner, shared),
            )
        self._save_record(run_id)
        return run_id

    def claim(self, run_id: str) -> bool:
        """Atomically move a queued run to running; False if someone else got it (or it was cancelled)."""
        now = time.time()
        return self._set(run_id, (Status.QUEUED,), status=Status.RUNNING, started=now, heartbeat=now)

    def start(self, run_id: str, pid: int, device: str, node: str | None = None) -> None:
        """The worker that trains a claimed run records itself (the only place a pid is written): its pid (on a
        cluster, the process here that writes what the node sends), device and Ray node (None: this machine)."""
        self._set(run_id, (Status.RUNNING,), pid=pid, device=device, node=node, heartbeat=time.time())

    def record_epoch(self, run_id: str, epoch: int, checkpoint: Path) -> None:
        self._set(run_id, ACTIVE, epochs_done=epoch, checkpoint=str(checkpoint), heartbeat=time.time())

    def finish(self, run_id: str, status: Status, **results: Any) -> None:
        """A run ended by its own loop: completed, stopped or diverged, with its results."""
        unknown = set(results) - set(RESULT_FIELDS)
        if unknown:
            raise TypeError(f"not a result field: {', '.join(sorted(unknown))}")
        if self._set(run_id, ACTIVE, status=status, finished=time.time(), **results):
            self._save_record(run_id)

    def fail(self, run_id: str, error: str) -> None:
        if self._set(run_id, ACTIVE, status=Status.FAILED, finished=time.time(), error=error):
            self._save_record(run_id)

    def interrupt(self, run_id: str, error: str, status: Status = Status.INTERRUPTED) -> None:
        """End an active run from outside its loop (a signal, a dead worker), pointing at its last saved epoch."""
        last = self.epoch_checkpoints(run_id)
        checkpoint = str(last[-1]) if last else None
        if self._set(run_id, ACTIVE, status=status, finished=time.time(), error=error, checkpoint=checkpoint):
            self._save_record(run_id)

    def request_stop(self, run_id: str, by: Person | None = None) -> None:
        """Ask a run to stop; a queued run is cancelled at once, a running one at its next step."""
        self.get_to_change(run_id, by)
        cancelled = self._set(run_id, (Status.QUEUED,), status=Status.STOPPED, finished=time.time())
        self._set(run_id, None, stop_requested=1)
        if cancelled:
            self._save_record(run_id)

    def log_metric(self, run_id: str, event: dict[str, Any]) -> None:
        """Append one step/epoch metric row and refresh the heartbeat in one short transaction."""
        with self.transaction(write=True) as con:
            con.execute(_INSERT_METRIC, (run_id, *(event.get(k) for k in METRIC_FIELDS)))
            con.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id))
        if event.get("kind") == "epoch":  # the folder's own copy, for reimport
            with open(self.run_dir(run_id) / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps({k: event.get(k) for k in METRIC_FIELDS}) + "\n")

    def mark_orphans(
        self, is_alive: Callable[[int], bool] = pid_alive, stale_after: float = 120.0
    ) -> builtins.list[str]:
        """Runs left ``running`` by a dead process become ``interrupted`` (keeping their last checkpoint)."""
        changed, now = [], time.time()
        for run in self.list(status=(Status.RUNNING,)):
            if run.pid is not None:
                orphan = not is_alive(run.pid)
            else:  # claimed but no worker recorded yet: judge by the heartbeat
                orphan = (run.heartbeat or run.started or run.created) < now - stale_after
            if orphan:
                self.interrupt(run.id, "the process training it stopped before the run finished")
                changed.append(run.id)
        return changed

    def rename(self, run_id: str, name: str, by: Person | None = None) -> str:
        """Rename a run; returns the name as stored (trimmed, at most 100 characters). A name another run of
        the same owner has (ignoring case) is refused: two runs called the same cannot be told apart in a picker
        or a chart (another person's runs are told apart by their owner)."""
        if not name.strip():
            raise InvalidRunName("a run name cannot be empty")
        name = _clean_name(name)
        owner = self.get_to_change(run_id, by).owner  # the id is checked before any connection
        with self.transaction(write=True) as con:  # checked and written in one transaction: no twin slips in between
            taken = con.execute(
                "SELECT id FROM runs WHERE name = ? COLLATE NOCASE AND id != ? AND owner = ? LIMIT 1",
                (name, run_id, owner),
            ).fetchone()
            if taken:
                shown = escape_controls(name)
                raise InvalidRunName(f"another run is already called “{shown}” ({taken[0]}): choose another name")
            if con.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id)).rowcount == 0:
                raise RunNotFound(f"no run {run_id!r}")
        self._save_record(run_id)
        return name

    def delete(self, run_id: str, by: Person | None = None) -> None:
        """Remove a finished run, its metrics and its folder (active runs must be stopped first)."""
        if self.get_to_change(run_id, by).status.active:
            raise RunBusy("stop the run before deleting it")
        with self.transaction(write=True) as con:
            con.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def share(self, run_id: str, shared: bool, by: Person | None = None) -> None:
        """Show a run to everyone (a teacher's reference run), or to its owner (and administrators) only again."""
        self.get_to_change(run_id, by)
        if self._set(run_id, None, shared=int(shared)):
            self._save_record(run_id)

    def move_in_queue(self, run_id: str, first: bool) -> None:
        """An administrator's reordering: a queued run goes before (``first``) or after every other queued run."""
        with self.transaction(write=True) as con:
            row = con.execute(
                "SELECT MAX(priority), MIN(priority) FROM runs WHERE status = ?", (Status.QUEUED,)
            ).fetchone()
            top, bottom = row[0] or 0, row[1] or 0
            con.execute(
                "UPDATE runs SET priority = ? WHERE id = ? AND status = ?",
                (top + 1 if first else bottom - 1, run_id, Status.QUEUED),
            )

    def disk_usage(self, owner: str) -> int:
        """Bytes in one owner's run folders (checkpoints, epochs, logs): what a disk quota counts."""
        return sum(folder_bytes(self.run_dir(run.id)) for run in self.list(owner=owner))

    def _set(self, run_id: str, only_if: tuple[Status, ...] | None, **values: Any) -> bool:
        """Write some of a run's columns (only while its status is in ``only_if``); True if it changed."""
        self.run_dir(run_id)
        if values.get("checkpoint") is not None:
            values["checkpoint"] = in_store(values["checkpoint"], run_id)
        columns = ", ".join(f"{_column(k)} = ?" for k in values)
        where, args = "id = ?", [*values.values(), run_id]
        if only_if:
            where += f" AND status IN ({', '.join('?' * len(only_if))})"
            args += list(only_if)
        with self.transaction(write=True) as con:
            return con.execute(f"UPDATE runs SET {columns} WHERE {where}", args).rowcount == 1

    def _save_record(self, run_id: str) -> None:
        record = self.get(run_id).record()
        if record["checkpoint"]:  # relative in the folder's own record too: a copied folder reimports anywhere
            record["checkpoint"] = in_store(record["checkpoint"], run_id)
        write_json(self.run_dir(run_id) / "run.json", record)

    def _located(self, run: Run) -> Run:
        """A run read from the database with its checkpoint where it is now: the path is kept relative to the
        store (a store copied or moved keeps working), and an old store's absolute path is read the same way."""
        if not run.checkpoint:
            return run
        return replace(run, checkpoint=str(self.root / in_store(run.checkpoint, run.id)))

    def resume(self, run_id: str, epoch: int, claim: bool = False) -> None:
        """A stopped, interrupted or failed run goes on after its saved epoch ``epoch``, under its own id: queued
        again (or running, for the caller), marked ``resumed_from`` so its worker resumes instead of starting
        over. Its metric rows and epoch checkpoints after that epoch are dropped (it records them again); those
        up to it are kept. ``CannotResume`` when the run is in another state."""
        status, now = (Status.RUNNING, time.time()) if claim else (Status.QUEUED, None)
        kept = [path for path in self.epoch_checkpoints(run_id) if (epoch_number(path) or 0) <= epoch]
        checkpoint = in_store(kept[-1], run_id) if kept else None
        with self.transaction(write=True) as con:
            changed = con.execute(
                "UPDATE runs SET status = ?, resumed_from = ?, epochs_done = ?, checkpoint = ?, started = ?, "
                "heartbeat = ?, finished = NULL, pid = NULL, stop_requested = 0, error = NULL, test_accuracy = NULL, "
                "test_loss = NULL, val_accuracy = NULL, seconds = NULL, images_per_s = NULL "
                f"WHERE id = ? AND status IN ({', '.join('?' * len(RESUMABLE))})",
                (status, epoch, epoch, checkpoint, now, now, run_id, *RESUMABLE),
            ).rowcount
            if changed:
                con.execute("DELETE FROM metrics WHERE run_id = ? AND epoch > ?", (run_id, epoch))
        if not changed:
            shown = self.get(run_id).status  # RunNotFound for an unknown id
            raise CannotResume(f"run {run_id} is {shown}; only a stopped, interrupted or failed run can be resumed")
        drop_epochs_after(self.run_dir(run_id), epoch)
        self._save_record(run_id)

    # -- rebuilding ----------------------------------------------------------------------------------------------

    def reimport(self) -> builtins.list[str]:
        """Add every run folder the database does not know, from its own files; returns the ids added."""
        with self.transaction() as con:
            known = {r[0] for r in con.execute("SELECT id FROM runs")}
        return [f.name for f in self.run_folders() if f.name not in known and self._import_folder(f)]

    def _import_folder(self, folder: Path) -> bool:
        """Add one folder's run; False (and nothing written) when the folder is not a readable run."""
        try:
            run = read_folder(folder)
        except BadRunStore:
            return False
        if run.id != folder.name:
            return False
        self.restore(run, read_metrics(folder / "metrics.jsonl"))
        return True

    def restore(self, run: Run, metrics: builtins.list[dict[str, Any]]) -> None:
        """Insert a run read back from its folder, with its epoch metrics (what ``reimport`` does per folder)."""
        row = {_column(k): v for k, v in run.record().items() if k != "ended"}
        row.update(finished=run.ended, config=run.config.to_json())
        if row["checkpoint"]:
            row["checkpoint"] = in_store(row["checkpoint"], run.id)
        with self.transaction(write=True) as con:
            con.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
            con.executemany(_INSERT_METRIC, [(run.id, *(m.get(k) for k in METRIC_FIELDS)) for m in metrics])


_ABSOLUTE_CHECKPOINTS = "SELECT id, checkpoint FROM runs WHERE checkpoint LIKE '/%'"
_COLUMNS = frozenset(f.name for f in fields(Run)) - {"ended"} | {"finished"}


def _column(name: str) -> str:
    """A keyword turned into a column name only when it is one: never SQL built from arbitrary text."""
    if name not in _COLUMNS:
        raise TypeError(f"not a run column: {name!r}")
    return name


def _clean_name(name: str) -> str:
    return name.strip()[:MAX_NAME]


def in_store(path: str | os.PathLike[str], run_id: str) -> str:
    """A run's checkpoint path as the database keeps it: from the run's own folder on (``RUN_ID/model.safetensors``).

    An absolute path, as stores before this one kept, is cut at its last ``RUN_ID`` segment, so a store that
    was copied or moved since still finds its files; a path outside any run folder is kept as it is."""
    parts = Path(path).parts
    if run_id not in parts:
        return os.fspath(path)
    at = len(parts) - 1 - parts[::-1].index(run_id)
    return Path(*parts[at:]).as_posix()
