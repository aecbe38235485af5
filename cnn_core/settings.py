"""Where CNN Lab keeps its files, each overridable by one environment variable.

- ``CNN_LAB_RUNS``: the run store (SQLite + one folder per run); default ``runs/`` in the project.
- ``CNN_LAB_CHECKPOINTS``: the bundled checkpoints; default ``checkpoints/`` in the project.
- ``CNN_LAB_DATASETS``: the user's named image datasets (``data add``); default ``datasets/`` in the project.
- ``CNN_LAB_DATA``: downloaded public datasets (torchvision's MNIST family, CIFAR) and the decoded-image cache
  of folders given by path; default ``~/.cache/cnn-lab/datasets``.

The project folder is the one holding ``cnn_core/`` (the package is installed editable, ``pip install -e .``).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def runs_dir() -> Path:
    return Path(os.environ.get("CNN_LAB_RUNS") or PROJECT_DIR / "runs")


def checkpoints_dir() -> Path:
    return Path(os.environ.get("CNN_LAB_CHECKPOINTS") or PROJECT_DIR / "checkpoints")


def datasets_dir() -> Path:
    return Path(os.environ.get("CNN_LAB_DATASETS") or PROJECT_DIR / "datasets")


def data_root() -> Path:
    return Path(os.environ.get("CNN_LAB_DATA") or Path.home() / ".cache" / "cnn-lab" / "datasets")
