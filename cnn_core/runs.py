"""The run store: SQLite (WAL, busy timeout) plus one folder of checkpoints per run.

One process writes a run while others (the app, other workers) read: WAL lets readers go on
during a write, every connection waits on a lock instead of failing, and writes are short
``BEGIN IMMEDIATE`` transactions. The folder is ``$CNN_LAB_RUNS`` or ``runs/`` in the project.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from cnn_core.config import RunConfig
from cnn_core.errors import RunNotFound

PROJECT_DIR = Path(__file__).resolve().parent.parent
ACTIVE = ("queued", "running")

_SCHEMA = """
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
_METRIC_FIELDS = (
    "kind",
    "epoch",
    "step",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "images_per_s",
    "elapsed",
    "total_steps",
)


# Columns added after the first release: (table, column, type). A store made by an older version gains them.
_ADDED_COLUMNS = (("metrics", "total_steps", "INTEGER"),)


def _add_missing_columns(con: sqlite3.Connection) -> None:
    for table, column, kind in _ADDED_COLUMNS:
        existing = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
        if column not in existing:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def default_runs_dir() -> Path:
    return Path(os.environ.get("CNN_LAB_RUNS", PROJECT_DIR / "runs"))


class RunStore:
    """Runs and their metrics; safe to use from several processes at once."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "runs.db"
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            _add_missing_columns(con)

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
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
        finally:
            con.close()

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def create(
        self,
        run: RunConfig,
        dataset: str,
        name: str | None = None,
        data_dir: str | None = None,
        group_id: str | None = None,
        status: str = "queued",
    ) -> str:
        """Register a run (queued for the job manager, or running for an in-process caller); returns its id."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        pool = run.model.conv[0].pool
        name = name or f"{dataset}-{pool}-seed{run.train.seed}"
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        (self.run_dir(run_id) / "config.json").write_text(run.to_json())
        with self._connect(write=True) as con:
            con.execute(
                "INSERT INTO runs (id, name, status, config, dataset, data_dir, group_id, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, name, status, run.to_json(), dataset, data_dir, group_id, time.time()),
            )
        return run_id

    def update(self, run_id: str, **fields: Any) -> None:
        if not fields:
            return
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._connect(write=True) as con:
            cur = con.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), run_id))
            if cur.rowcount == 0:
                raise RunNotFound(f"no run {run_id!r}")

    def log_metric(self, run_id: str, event: dict[str, Any]) -> None:
        """Append one step/epoch metric row and refresh the heartbeat in one short transaction."""
        with self._connect(write=True) as con:
            con.execute(
                f"INSERT INTO metrics (run_id, {', '.join(_METRIC_FIELDS)}) VALUES "
                f"(?, {', '.join('?' * len(_METRIC_FIELDS))})",
                (run_id, *(event.get(k) for k in _METRIC_FIELDS)),
            )
            con.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id))

    def get(self, run_id: str) -> dict[str, Any]:
        with self._connect() as con:
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id!r}")
        return dict(row)

    def config(self, run_id: str) -> RunConfig:
        return RunConfig.from_json(self.get(run_id)["config"])

    def list(self, status: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """All runs, newest first (optionally only those with the given statuses)."""
        query, args = "SELECT * FROM runs", ()
        if status:
            query += f" WHERE status IN ({', '.join('?' * len(status))})"
            args = status
        with self._connect() as con:
            return [dict(r) for r in con.execute(query + " ORDER BY created DESC, id DESC", args)]

    def metrics(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT * FROM metrics WHERE run_id = ?", (run_id,)
        if kind:
            query, args = query + " AND kind = ?", (run_id, kind)
        with self._connect() as con:
            return [dict(r) for r in con.execute(query + " ORDER BY rowid", args)]

    def last_metric(self, run_id: str) -> dict[str, Any] | None:
        """The newest metric row (what a progress bar needs), without reading the whole history."""
        with self._connect() as con:
            row = con.execute(
                "SELECT * FROM metrics WHERE run_id = ? ORDER BY rowid DESC LIMIT 1", (run_id,)
            ).fetchone()
        return dict(row) if row else None

    def rename(self, run_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError("a run name cannot be empty")
        self.update(run_id, name=name[:100])

    def delete(self, run_id: str) -> None:
        """Remove a finished run, its metrics and its folder (active runs must be stopped first)."""
        if self.get(run_id)["status"] in ACTIVE:
            raise ValueError("stop the run before deleting it")
        with self._connect(write=True) as con:
            con.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def request_stop(self, run_id: str) -> None:
        """Ask a run to stop; a queued run is cancelled at once, a running one at its next step."""
        with self._connect(write=True) as con:
            con.execute(
                "UPDATE runs SET status = 'stopped', finished = ? WHERE id = ? AND status = 'queued'",
                (time.time(), run_id),
            )
            con.execute("UPDATE runs SET stop_requested = 1 WHERE id = ?", (run_id,))

    def stop_requested(self, run_id: str) -> bool:
        with self._connect() as con:
            row = con.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def epoch_checkpoints(self, run_id: str) -> list[Path]:
        """Weights saved after each epoch, oldest first (the Filters page scrubs through them)."""
        return sorted((self.run_dir(run_id) / "epochs").glob("epoch_*.safetensors"))

    def claim(self, run_id: str, pid: int) -> bool:
        """Atomically move a queued run to running; False if someone else got it (or it was cancelled)."""
        with self._connect(write=True) as con:
            cur = con.execute(
                "UPDATE runs SET status = 'running', pid = ?, started = ?, heartbeat = ? "
                "WHERE id = ? AND status = 'queued'",
                (pid, time.time(), time.time(), run_id),
            )
            return cur.rowcount == 1

    def mark_orphans(self, is_alive, stale_after: float = 120.0) -> list[str]:
        """Runs left ``running`` by a dead worker become ``interrupted`` (keeping their last checkpoint)."""
        changed = []
        now = time.time()
        for run in self.list(status=("running",)):
            if run["pid"] is not None:
                orphan = not is_alive(run["pid"])
            else:  # no worker recorded: judge by the heartbeat
                orphan = (run["heartbeat"] or run["started"] or run["created"]) < now - stale_after
            if orphan:
                self.interrupt(run["id"], "the worker stopped before the run finished")
                changed.append(run["id"])
        return changed

    def interrupt(self, run_id: str, error: str, status: str = "interrupted") -> None:
        """End an active run from outside its worker, pointing at its last saved epoch."""
        last = self.epoch_checkpoints(run_id)
        with self._connect(write=True) as con:
            con.execute(
                "UPDATE runs SET status = ?, finished = ?, error = ?, checkpoint = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (status, time.time(), error, str(last[-1]) if last else None, run_id),
            )
