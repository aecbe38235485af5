"""A sweep as the pages and the CLI see it: a frozen ``Sweep`` whose spec is parsed once, and its ``SweepStatus``.

A sweep's life: queued → running → completed | stopped | failed | interrupted, and an interrupted (or
stopped, or failed) sweep may be resumed: → queued (job manager) or running (the CLI). Its trials are
ordinary runs whose ``group_id`` is the sweep's id; ``SweepTrial`` ties Ray Tune's trial id to that run.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cnn_core.config.sweep import Invalid, SweepConfig
from cnn_core.errors import BadRunStore, CnnLabError
from cnn_core.people import LOCAL_ID
from cnn_core.safetext import escape_controls

SWEEP_ID = re.compile(r"sweep-\d{8}-\d{6}-[0-9a-f]{6}")


class SweepStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"  # the driver itself failed (Ray would not start, the cluster went away); not a trial
    INTERRUPTED = "interrupted"  # the driver was killed: finished trials are kept, ``--resume`` goes on

    @property
    def active(self) -> bool:
        return self in (SweepStatus.QUEUED, SweepStatus.RUNNING)


SWEEP_ACTIVE = (SweepStatus.QUEUED, SweepStatus.RUNNING)
SWEEP_RESUMABLE = (SweepStatus.INTERRUPTED, SweepStatus.STOPPED, SweepStatus.FAILED)


@dataclass(frozen=True)
class Sweep:
    """One row of the ``sweeps`` table, parsed once."""

    id: str
    name: str
    status: SweepStatus
    config: SweepConfig
    created: float
    started: float | None
    ended: float | None
    heartbeat: float | None
    pid: int | None
    address: str | None  # the Ray cluster it joined; None: Ray embedded in the driver
    storage: str | None  # Tune's storage path or URI; None: the sweep's folder in the runs directory
    cluster: dict[str, Any]  # what the driver saw of Ray: nodes, CPUs, GPUs, whether it joined a cluster
    invalid: tuple[Invalid, ...]
    error: str | None
    stop_requested: bool
    owner: str = LOCAL_ID  # who queued it; its trials' runs are theirs too
    shared: bool = False

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Sweep:
        data = {k: row[k] for k in row.keys()}
        try:
            return cls(
                id=data["id"],
                name=data["name"],
                status=SweepStatus(data["status"]),
                config=SweepConfig.from_json(data["spec"]),
                created=data["created"],
                started=data["started"],
                ended=data["finished"],
                heartbeat=data["heartbeat"],
                pid=data["pid"],
                address=data["address"],
                storage=data["storage"],
                cluster=json.loads(data["cluster"] or "{}"),
                invalid=tuple(Invalid(i["params"], i["reason"]) for i in json.loads(data["invalid"] or "[]")),
                error=data["error"],
                stop_requested=bool(data["stop_requested"]),
                owner=data.get("owner") or LOCAL_ID,
                shared=bool(data.get("shared")),
            )
        except (CnnLabError, KeyError, TypeError, ValueError) as err:
            where = escape_controls(str(data.get("id")))[:40]
            raise BadRunStore(f"sweep {where} is damaged in the store ({type(err).__name__}): {err}"[:300]) from None

    @property
    def label(self) -> str:
        return escape_controls(self.name)


@dataclass(frozen=True)
class SweepTrial:
    """A Tune trial of a sweep and the run that records it."""

    trial_id: str
    run_id: str
    params: dict[str, Any]
    seed: int
    node: str | None  # the Ray node that trained it
