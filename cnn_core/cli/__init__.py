"""The ``cnn-lab`` command: ``summary``, ``train``, ``resume``, ``predict``, ``runs``, ``data`` and ``sweep``."""

from cnn_core.cli.commands import (  # the names callers use: ``from cnn_core.cli import ...``
    cmd_cluster_bridge,
    cmd_pool_worker,
    cmd_predict,
    cmd_resume,
    cmd_runs,
    cmd_summary,
    cmd_train,
    cmd_worker,
    main,
    run,
    startup_done,
)

__all__ = [
    "cmd_cluster_bridge",
    "cmd_pool_worker",
    "cmd_predict",
    "cmd_resume",
    "cmd_runs",
    "cmd_summary",
    "cmd_train",
    "cmd_worker",
    "main",
    "run",
    "startup_done",
]
