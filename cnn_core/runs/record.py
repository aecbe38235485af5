"""A run's folder as its own record: ``config.json``, ``run.json``, ``metrics.jsonl`` and its checkpoints.

Written beside the database so that a lost or emptied ``runs.db`` can be rebuilt (``RunStore.reimport``) and a
run folder copied from another machine can be added to this store.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from cnn_core import safejson
from cnn_core.config import load_config
from cnn_core.errors import BadRunStore, CnnLabError
from cnn_core.files import atomic_write
from cnn_core.runs.run import Run, Status


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2).encode())


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Epoch metric lines; a line torn by a crash mid-write is skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


EPOCH_FILE = re.compile(r"epoch_(\d+)\.(safetensors|json)")  # an epoch's checkpoint and its sidecar


def drop_epochs_after(folder: Path, epoch: int) -> None:
    """Forget a run folder's epochs after ``epoch`` (a resumed run trains them again): their lines in
    ``metrics.jsonl`` (rewritten whole) and their checkpoints."""
    metrics = folder / "metrics.jsonl"
    if metrics.is_file():
        kept = [row for row in read_metrics(metrics) if _epoch_of(row) <= epoch]
        atomic_write(metrics, "".join(json.dumps(row) + "\n" for row in kept).encode())
    for path in (folder / "epochs").glob("epoch_*"):
        number = epoch_number(path)
        if number is not None and number > epoch:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _epoch_of(row: dict[str, Any]) -> int:
    return row["epoch"] if isinstance(row.get("epoch"), int) else 0


def epoch_number(path: Path) -> int | None:
    """The epoch an epoch checkpoint (or its sidecar) was saved after, from its name."""
    match = EPOCH_FILE.fullmatch(path.name)
    return int(match[1]) if match else None


def read_folder(folder: Path) -> Run:
    """The run a folder describes; ``BadRunStore`` when its files are missing or damaged."""
    try:
        config = load_config(folder / "config.json")
        record = safejson.loads((folder / "run.json").read_bytes(), f"{folder / 'run.json'}", error=BadRunStore)
        status = Status(record["status"])
        run = Run(
            **{k: v for k, v in record.items() if k in Run.__dataclass_fields__ and k != "status"},
            config=config,
            status=Status.INTERRUPTED if status.active else status,
            pid=None,
            heartbeat=None,
            stop_requested=False,
        )
    except (CnnLabError, OSError, KeyError, TypeError, ValueError) as err:
        raise BadRunStore(f"{folder} cannot be read back as a run: {err}") from None
    if status.active:  # it was training when the store was lost: what it kept is its last epoch
        epochs = sorted((folder / "epochs").glob("epoch_*.safetensors"))
        run = replace(
            run, error="interrupted: the run store was rebuilt", checkpoint=str(epochs[-1]) if epochs else None
        )
    return run
