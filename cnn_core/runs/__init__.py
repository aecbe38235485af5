"""Runs: the store (``RunStore``), a run as a typed object (``Run``, ``Status``), its folder on disk, and sweeps
(``Sweep``, ``SweepStatus``: many runs grouped, in ``store.sweeps``)."""

from cnn_core.runs.run import ACTIVE, RESUMABLE, RUN_ID, Run, Status
from cnn_core.runs.store import RunStore, default_runs_dir, pid_alive
from cnn_core.runs.sweep_record import SWEEP_ACTIVE, Sweep, SweepStatus, SweepTrial
from cnn_core.safetext import escape_controls

__all__ = [
    "ACTIVE",
    "RESUMABLE",
    "RUN_ID",
    "SWEEP_ACTIVE",
    "Run",
    "RunStore",
    "Status",
    "Sweep",
    "SweepStatus",
    "SweepTrial",
    "default_runs_dir",
    "escape_controls",
    "pid_alive",
]
