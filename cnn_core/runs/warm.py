"""A warm worker: one process that trains run after run, torch and the data already loaded.

``python -m cnn_core pool-worker`` reads run ids, one a line, on its standard input and trains each with
``runner.execute_run``, exactly as a fresh ``worker`` process would, so a run launched from the app does not pay
a new Python's start (importing torch, building the optimizer's compiled kernels: about 2.5 s on two cores) before
its first point. Its datasets stay in memory between runs (a few, keyed by what they were read from). The job
manager keeps a pool of them and replaces one that dies, whose run it marks ``interrupted``.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TextIO

from cnn_core.data import PUBLIC, Dataset, library, load_dataset
from cnn_core.errors import CnnLabError
from cnn_core.runs.runner import execute_run
from cnn_core.runs.store import RunStore

KEEP_DATASETS = 3  # a class trains on one or two; three 60k MNIST-sized sets are under 200 MB


def warm_up() -> None:
    """What a first run would otherwise pay: the optimizer's first use imports torch's compiler (about 2 s)."""
    import torch

    from cnn_core.config import RunConfig
    from cnn_core.model import ConvNet
    from cnn_core.training.optimizers import make_optimizer

    run = RunConfig()
    model = ConvNet(run.model)
    optimizer = make_optimizer(model, run.train, torch.device("cpu"))
    loss = model(torch.zeros(2, 1, 28, 28)).sum()
    loss.backward()
    optimizer.step()


class DataCache:
    """The last few datasets, keyed by name, folder, validation share and the files' change time."""

    def __init__(self, keep: int = KEEP_DATASETS) -> None:
        self.keep = keep
        self._data: OrderedDict[tuple[object, ...], Dataset] = OrderedDict()

    def get(self, dataset: str, data_dir: str | None, val_fraction: float) -> Dataset:
        key = (dataset, data_dir, val_fraction, _stamp(dataset, data_dir))
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        data = load_dataset(dataset, data_dir=data_dir, val_fraction=val_fraction)
        self._data[key] = data
        while len(self._data) > self.keep:
            self._data.popitem(last=False)
        return data


def _stamp(dataset: str, data_dir: str | None) -> int:
    """When the files a dataset comes from last changed (a re-added dataset of the same name is new data)."""
    try:
        if data_dir is not None:
            return os.stat(data_dir).st_mtime_ns
        if dataset not in PUBLIC:
            return os.stat(library.folder_of(dataset) / "dataset.json").st_mtime_ns
    except (OSError, CnnLabError):
        return -1  # gone: load_dataset says what is wrong
    return 0


def serve(
    store: RunStore, lines: Iterable[str], out: TextIO = sys.stdout, on_ready: Callable[[], None] | None = None
) -> int:
    """Train each run id read from ``lines``; "ready" once warm (after ``on_ready``), "done RUN_ID" after each.
    Returns how many it trained."""
    warm_up()
    if on_ready is not None:
        on_ready()
    cache, served = DataCache(), 0
    print("ready", file=out, flush=True)
    for line in lines:
        run_id = line.strip()
        if not run_id:
            continue
        data = None
        try:
            record = store.get(run_id)
            data = cache.get(record.dataset, record.data_dir, record.config.train.val_fraction)
        except CnnLabError:
            pass  # execute_run meets the same error and records it on the run
        execute_run(store, run_id, data=data)
        served += 1
        print(f"done {run_id}", file=out, flush=True)
    return served
