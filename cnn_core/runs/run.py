"""A run as the pages and the CLI see it: a frozen ``Run`` whose config is parsed once, and its ``Status``."""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from cnn_core.config import RunConfig
from cnn_core.errors import BadRunStore, CnnLabError
from cnn_core.people import LOCAL_ID, Person
from cnn_core.runs.sweep_record import SWEEP_ID
from cnn_core.safetext import escape_controls


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"  # a sweep's scheduler ended it early

    @property
    def active(self) -> bool:
        return self in (Status.QUEUED, Status.RUNNING)

    @property
    def finished(self) -> bool:
        return not self.active


ACTIVE = (Status.QUEUED, Status.RUNNING)


def owner_filter(visible_to: Person | None, owner: str | None) -> tuple[list[str], list[str]]:
    """SQL conditions and their arguments for the rows a person may see (all, for an administrator) and those of
    one owner: what the runs and the sweeps tables both list by."""
    where: list[str] = []
    args: list[str] = []
    if visible_to is not None and not visible_to.admin:
        where.append("(owner = ? OR shared = 1)")
        args.append(visible_to.id)
    if owner is not None:
        where.append("owner = ?")
        args.append(owner)
    return where, args


# Ended before their last epoch, for a reason that training again does not repeat: they may go on from their last
# saved epoch. Not diverged (the same steps would diverge again), nor pruned (a sweep's scheduler decided).
RESUMABLE = (Status.STOPPED, Status.INTERRUPTED, Status.FAILED)
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")  # time.strftime("%Y%m%d-%H%M%S") + 3 random bytes


@functools.lru_cache(maxsize=4096)
def stored_config(text: str) -> RunConfig:
    """A config as stored in a run's row, parsed and validated once per process.

    A page reads the store every second while runs are active (the Train page's live view, in every open
    session), and parsing the same JSON of every listed run again was most of what a ``list()`` cost. A
    ``RunConfig`` is frozen all the way down, so one parsed object can serve every reader; a text that does
    not parse raises each time (exceptions are not cached)."""
    return RunConfig.from_json(text)


@dataclass(frozen=True)
class Run:
    """One row of the store, parsed once: the config is a ``RunConfig``, the status a ``Status``."""

    id: str
    name: str
    status: Status
    config: RunConfig
    dataset: str
    data_dir: str | None
    device: str | None
    group_id: str | None
    created: float
    started: float | None
    ended: float | None
    heartbeat: float | None
    pid: int | None
    epochs_done: int
    test_accuracy: float | None
    test_loss: float | None
    val_accuracy: float | None
    seconds: float | None
    images_per_s: float | None
    checkpoint: str | None
    error: str | None
    stop_requested: bool
    owner: str = LOCAL_ID  # a person's id (``cnn_core.people``); runs from before owners belong to the local owner
    shared: bool = False  # shown to everyone, not only to its owner (and administrators)
    priority: int = 0  # an administrator moved it up the queue (higher starts first)
    resumed_from: int | None = None  # the saved epoch it last went on from (``RunStore.resume``); None: never
    node: str | None = None  # the Ray node that trained it (``jobs/cluster.py``); None: this machine

    @classmethod
    def from_row(cls, row: sqlite3.Row | dict[str, Any]) -> Run:
        known = set(cls.__dataclass_fields__) | {"finished"}
        data = {k: row[k] for k in row.keys() if k in known}  # columns a newer version added are not ours to read
        try:
            data.update(
                config=stored_config(data["config"]),
                status=Status(data["status"]),
                ended=data.pop("finished"),
                epochs_done=data["epochs_done"] or 0,
                stop_requested=bool(data["stop_requested"]),
                shared=bool(data.get("shared")),
            )
            return cls(**data)
        except (CnnLabError, KeyError, TypeError, ValueError) as err:  # a damaged row: NULLs, garbage text
            where = escape_controls(str(data.get("id")))[:40]
            raise BadRunStore(f"run {where} is damaged in the store ({type(err).__name__}): {err}"[:300]) from None

    @property
    def pooling(self) -> str:
        """The run's pooling: that of its first pooling layer ("none" when it has none)."""
        return next((b.pool for b in self.config.model.conv if b.pool != "none"), "none")

    @property
    def seed(self) -> int:
        return self.config.train.seed

    @property
    def epochs(self) -> int:
        return self.config.train.epochs

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def resumable(self) -> bool:
        """Whether it may go on from its last saved epoch (a Resume button's test): stopped, interrupted or
        failed with an epoch saved, and not a sweep's trial (those go on when their sweep resumes).
        ``runner.resume_run`` says why not in one line when its saved state is missing or damaged."""
        return self.status in RESUMABLE and self.epochs_done >= 1 and not self.sweep_trial

    @property
    def sweep_trial(self) -> bool:
        return bool(self.group_id and SWEEP_ID.fullmatch(self.group_id))

    @property
    def where(self) -> str | None:
        """The device it trained on, and the Ray node when a cluster trained it (``cpu · bf16 on Ray node
        a7ac1421``); None before it started."""
        if self.device is None:
            return None
        return f"{self.device} on Ray node {self.node[:8]}" if self.node else self.device

    @property
    def label(self) -> str:
        """The name as it is safe to show anywhere (control characters escaped)."""
        return escape_controls(self.name)

    def record(self) -> dict[str, Any]:
        """What ``run.json`` holds: everything but the config (in ``config.json``) and the process details."""
        skip = {"config", "pid", "heartbeat", "stop_requested", "priority"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
