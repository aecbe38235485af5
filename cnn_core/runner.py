"""Run one stored run to its end: the glue between the training loop and the run store.

The CLI calls it in-process and the job manager's workers call it in their own process; both
get the same record: status, heartbeat, metric rows, a checkpoint after every epoch and a final
one. A failure of any kind still leaves the run with a final status and its error message.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable

import torch

from cnn_core.checkpoint import atomic_write, save_checkpoint
from cnn_core.config import RunConfig
from cnn_core.data import Dataset, load_dataset
from cnn_core.errors import CnnLabError
from cnn_core.model import ConvNet
from cnn_core.runs import RunStore
from cnn_core.train import Event, TrainResult, device_label, pick_device, train

STOP_POLL_SECONDS = 0.25  # how often the store is asked whether someone pressed stop


def execute_run(
    store: RunStore,
    run_id: str,
    data: Dataset | None = None,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult | None:
    """Train a queued run, recording everything in ``store``; returns None if it failed to start."""
    row = store.get(run_id)
    run = RunConfig.from_json(row["config"])
    store.update(run_id, status="running", started=time.time(), heartbeat=time.time(), pid=os.getpid())
    try:
        store.update(run_id, device=device_label(pick_device(run.train.device)))
        if data is None:
            data = load_dataset(row["dataset"], data_dir=row["data_dir"], val_fraction=run.train.val_fraction)
        result = train(
            run,
            data,
            on_event=_recorder(store, run_id, on_event),
            should_stop=_stop_checker(store, run_id, should_stop),
            on_epoch_end=_epoch_saver(store, run_id, run),
        )
    except CnnLabError as err:
        store.update(run_id, status="failed", finished=time.time(), error=str(err))
        return None
    except torch.cuda.OutOfMemoryError:
        error = (
            f"the GPU ran out of memory with batch size {run.train.batch_size}: try a smaller batch or a narrower model"
        )
    except BaseException as err:  # a bug or an interrupt: record it, then let it surface
        store.update(
            run_id,
            status="failed" if isinstance(err, Exception) else "interrupted",
            finished=time.time(),
            error=f"{type(err).__name__}: {err}",
        )
        raise
    else:
        _finish(store, run_id, run, data, result)
        return result
    # Out of the except block, so the failed step's tensors (kept alive by the traceback) can be freed.
    torch.cuda.empty_cache()
    store.update(run_id, status="failed", finished=time.time(), error=error)
    return None


def _finish(store: RunStore, run_id: str, run: RunConfig, data: Dataset, result: TrainResult) -> None:
    checkpoint = None
    if result.status != "diverged":  # a diverged model has NaN weights: keep only the last good epoch
        checkpoint = str(
            save_checkpoint(
                store.run_dir(run_id) / "model.safetensors",
                result.model,
                run.model,
                {
                    "dataset": data.name,
                    "run_id": run_id,
                    "epochs": result.epochs_done,
                    "test_accuracy": result.test_accuracy,
                    "val_accuracy": result.val_accuracy,
                    "train": run.train.to_dict(),
                },
            )
        )
        predictions = {
            "labels": data.test_y.tolist(),
            "predictions": result.test_predictions.tolist(),
            "classes": data.classes,
        }
        atomic_write(store.run_dir(run_id) / "predictions.json", json.dumps(predictions).encode())
    elif store.epoch_checkpoints(run_id):
        checkpoint = str(store.epoch_checkpoints(run_id)[-1])
    store.update(
        run_id,
        status=result.status,
        finished=time.time(),
        epochs_done=result.epochs_done,
        test_accuracy=result.test_accuracy,
        test_loss=result.test_loss,
        val_accuracy=result.val_accuracy,
        seconds=result.seconds,
        images_per_s=result.images_per_s,
        checkpoint=checkpoint,
        error=result.error,
    )


def _recorder(store: RunStore, run_id: str, listener: Callable[[Event], None] | None) -> Callable[[Event], None]:
    def record(event: Event) -> None:
        if event.kind in ("step", "epoch"):
            store.log_metric(run_id, event.to_dict())
        if listener is not None:
            listener(event)

    return record


def _stop_checker(store: RunStore, run_id: str, extra: Callable[[], bool] | None) -> Callable[[], bool]:
    last = [0.0, False]

    def should_stop() -> bool:
        if extra is not None and extra():
            return True
        now = time.monotonic()
        if now - last[0] >= STOP_POLL_SECONDS:
            last[0], last[1] = now, store.stop_requested(run_id)
        return last[1]

    return should_stop


def _epoch_saver(store: RunStore, run_id: str, run: RunConfig) -> Callable[[ConvNet, Event], None]:
    def save(model: ConvNet, event: Event) -> None:
        path = store.run_dir(run_id) / "epochs" / f"epoch_{event.epoch:03d}.safetensors"
        save_checkpoint(path, model, run.model, {"epoch": event.epoch, "val_accuracy": event.val_accuracy})
        store.update(run_id, epochs_done=event.epoch, heartbeat=time.time(), checkpoint=str(path))

    return save
