"""The fair queue: queued runs start round-robin across people, so one person's ten runs never starve another's one.

Round-robin over a busy period: count the runs each owner has running, or started (and maybe ended) since the
oldest run still waiting was queued. The next run is the oldest waiting run of the owner served least (of equals,
the one served longest ago); that repeats down the queue. Person A queues five runs (the first starts at once),
then B queues one: A has one started, B none, so B's run goes before A's second. An administrator's move
(``priority``) comes before that (or, moved to the back, after it).
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict, deque
from dataclasses import dataclass

from cnn_core.runs import Run, Status


def fair_order(queued: list[Run], others: list[Run]) -> list[Run]:
    """``queued`` runs in the order they should start; ``others`` are the rest of the store's runs (those
    running or ended: who has been served)."""
    if not queued:
        return []
    since = min(r.created for r in queued)
    served: dict[str, int] = defaultdict(int)
    last_start: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    for run in others:
        if run.started is not None and (run.started >= since or run.status == Status.RUNNING):
            served[run.owner] += 1
            last_start[run.owner] = max(last_start[run.owner], (0, run.started))
    waiting: dict[str, deque[Run]] = defaultdict(deque)
    for run in sorted((r for r in queued if r.priority == 0), key=lambda r: (r.created, r.id)):
        waiting[run.owner].append(run)
    order = sorted((r for r in queued if r.priority > 0), key=lambda r: -r.priority)  # moved to the front
    for run in order:  # ... and counted as their owner's turn
        served[run.owner] += 1
        last_start[run.owner] = (1, 0)
    for turn in itertools.count(1):  # a run placed here starts after every start so far: (1, turn) > (0, started)
        if not waiting:
            break
        owner = min(waiting, key=lambda o: (served[o], last_start[o], waiting[o][0].created))
        order.append(waiting[owner].popleft())
        served[owner] += 1
        last_start[owner] = (1, turn)
        if not waiting[owner]:
            del waiting[owner]
    return order + sorted((r for r in queued if r.priority < 0), key=lambda r: -r.priority)  # moved to the back


@dataclass(frozen=True)
class Wait:
    """Where a queued run stands: ``position`` 1 starts next; ``seconds`` is an estimate (None: no history)."""

    position: int
    seconds: float | None

    @property
    def text(self) -> str:
        """ "3rd in line · about 2 min" (or "next in line")."""
        n = self.position
        where = "next in line" if n == 1 else f"{n}{_suffix(n)} in line"
        if self.seconds is None:
            return f"{where} · no estimate until a run has finished"
        return f"{where} · starts in about {_duration(self.seconds)}"


def _suffix(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(round(seconds), 1)} s"
    return f"{seconds / 60:,.0f} min"


def seconds_per_epoch(runs: list[Run], dataset: str) -> float | None:
    """The median seconds an epoch took in completed runs on ``dataset`` (any dataset when none has one)."""
    for same in (True, False):
        done = [
            r.seconds / r.epochs_done
            for r in runs
            if r.status == Status.COMPLETED and r.seconds and r.epochs_done and (r.dataset == dataset or not same)
        ]
        if done:
            return statistics.median(done)
    return None


def queue_wait(run_id: str, order: list[Run], running: dict[str, float | None], runs: list[Run], slots: int) -> Wait:
    """Position and estimated wait of queued run ``run_id`` in ``order`` (from ``fair_order``); ``running`` maps
    each running run to its seconds left (None: unknown), ``runs`` is the history estimates come from, ``slots``
    how many runs train at once."""
    position = next(i for i, r in enumerate(order) if r.id == run_id)
    total = 0.0
    for seconds in running.values():
        if seconds is None:
            return Wait(position + 1, None)
        total += seconds
    for run in order[:position]:
        per_epoch = seconds_per_epoch(runs, run.dataset)
        if per_epoch is None:
            return Wait(position + 1, None)
        total += per_epoch * run.epochs
    return Wait(position + 1, total / max(slots, 1))
