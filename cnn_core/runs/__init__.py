"""Runs: the store (``RunStore``), a run as a typed object (``Run``, ``Status``) and its folder on disk."""

from cnn_core.runs.run import ACTIVE, RUN_ID, Run, Status, escape_controls
from cnn_core.runs.store import RunStore, default_runs_dir, pid_alive

__all__ = ["ACTIVE", "RUN_ID", "Run", "RunStore", "Status", "default_runs_dir", "escape_controls", "pid_alive"]
