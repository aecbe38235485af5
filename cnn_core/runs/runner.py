"""Run one stored run to its end: the glue between the training loop and the run store.

The CLI calls it in-process and the job manager's workers call it in their own process; both
get the same record: status, heartbeat, metric rows, a checkpoint after every epoch and a final
one. A failure of any kind still leaves the run with a final status and its error message.

After every epoch the runner also saves the loop's training state beside the epoch checkpoints (one file, the
last epoch's: ``RunStore.train_state``), so that a stopped, interrupted or failed run can go on from there
(``resume_run``, then this runner again: it sees ``Run.resumed_from`` and hands the state to ``train``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, cast

import torch

from cnn_core.config import RunConfig, budget
from cnn_core.data import Dataset, check_fits, load_dataset
from cnn_core.errors import BadCheckpoint, CannotResume, CnnLabError, storage_error
from cnn_core.files import atomic_write
from cnn_core.model import ConvNet
from cnn_core.model.checkpoint import HASH_KEY, load_checkpoint, save_checkpoint
from cnn_core.runs import RESUMABLE, Run, RunStore, Status
from cnn_core.runs.store import EPOCHS, TRAIN_STATE
from cnn_core.training.loop import Event, Outcome, TrainResult, run_device_label, train
from cnn_core.training.state import TrainState, load_state, save_state

STOP_POLL_SECONDS = 0.25  # how often the store is asked whether someone pressed stop


def execute_run(
    store: RunStore,
    run_id: str,
    data: Dataset | None = None,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult | None:
    """Train a claimed (or queued) run, recording everything in ``store``; None if it failed or was taken."""
    record = store.get(run_id)
    if record.status is Status.QUEUED and not store.claim(run_id):
        return None  # cancelled, or another worker took it
    run = record.config
    try:
        store.start(run_id, os.getpid(), run_device_label(run.train))
        if data is None:
            data = load_dataset(record.dataset, data_dir=record.data_dir, val_fraction=run.train.val_fraction)
        check_fits(data, run.model)
        budget.check(run, train_images=len(data.train_y))  # here too: the worker may train on a GPU
        result = train(
            run,
            data,
            on_event=recorder(store, run_id, on_event),
            should_stop=_stop_checker(store, run_id, should_stop),
            on_epoch_end=_epoch_saver(store, record, data),
            resume=saved_state(store, record) if record.resumed_from else None,
        )
    except Exception as err:  # one line for the user's mistakes; a bug's type and message, and it surfaces
        error = failure_message(err, run, f"run {run_id} in {store.root}")
        if error is None:
            store.fail(run_id, f"{type(err).__name__}: {err}")
            raise
    except BaseException as err:  # an interrupt: record it, then let it surface
        store.interrupt(run_id, f"interrupted ({type(err).__name__}); the last epoch's checkpoint is kept")
        raise
    else:
        final = None if result.status == Outcome.DIVERGED else save_final(store.run_dir(run_id), record, data, result)
        record_end(store, run_id, summary_of(result), final)
        return result
    # Out of the except block, so the failed step's tensors (kept alive by the traceback) can be freed.
    torch.cuda.empty_cache()
    store.fail(run_id, error)
    return None


def failure_message(err: Exception, run: RunConfig, where: str) -> str | None:
    """A failed run's one line for what a user can cause or fix (bad data, too big a batch for the GPU, a full
    disk); None for anything else (a bug: its type and message are recorded, and it surfaces)."""
    if isinstance(err, CnnLabError):
        return str(err)
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return (
            f"the GPU ran out of memory with batch size {run.train.batch_size}: try a smaller batch or a narrower model"
        )
    if isinstance(err, OSError):  # a full disk while saving a checkpoint, a data file that vanished
        return str(storage_error(err, where))
    return None


def resume_run(store: RunStore, run_id: str, claim: bool = False) -> int:
    """Queue a stopped, interrupted or failed run again to go on after its last saved epoch (running at once for
    the caller, with ``claim``); that epoch. The saved state is read first, so a run with nothing to go on from
    is refused in one line (``CannotResume``, ``BadCheckpoint``) and left as it was."""
    run = store.get(run_id)
    if run.sweep_trial:
        raise CannotResume(f"run {run_id} is a trial of {run.group_id}: resume the sweep, and its trials go on")
    if run.status not in RESUMABLE:
        raise CannotResume(f"run {run_id} is {run.status}; only a stopped, interrupted or failed run can be resumed")
    path = store.train_state(run_id)
    if not path.is_file():
        raise CannotResume(
            f"run {run_id} has no saved training state to go on from: it ended before its first epoch, or an "
            "older CNN Lab trained it"
        )
    state = load_state(path)
    store.resume(run_id, state.epoch, claim=claim)
    return state.epoch


def saved_state(store: RunStore, record: Run) -> TrainState:
    """The state a resumed run goes on from: the epoch ``RunStore.resume`` kept the run's records up to."""
    state = load_state(store.train_state(record.id))
    if state.epoch != record.resumed_from:
        raise BadCheckpoint(
            f"run {record.id}'s saved training state is for epoch {state.epoch}, not {record.resumed_from} as "
            "when it was resumed: resume it again"
        )
    return state


def save_final(folder: Path, record: Run, data: Dataset, result: TrainResult) -> Path:
    """A run's final checkpoint and ``predictions.json`` in ``folder`` (its run folder, or a cluster node's
    scratch folder whose files go there); the checkpoint's path. Not for a diverged run (NaN weights)."""
    checkpoint = save_checkpoint(
        folder / "model.safetensors",
        result.model,
        record.config.model,
        final_metadata(record.id, record.config, data, result.epochs_done, result.test_accuracy, result.val_accuracy),
    )
    # train() evaluates the test set whenever the run did not diverge
    tested, confidences = cast(torch.Tensor, result.test_predictions), cast(torch.Tensor, result.test_confidences)
    atomic_write(folder / "predictions.json", json.dumps(predictions_record(data, tested, confidences)).encode())
    return checkpoint


def summary_of(result: TrainResult) -> dict[str, Any]:
    """How a run ended, as plain values (what crosses from a cluster node): its status and result fields."""
    fields = ("epochs_done", "test_accuracy", "test_loss", "val_accuracy", "seconds", "images_per_s", "error")
    return {"status": result.status.value, **{k: getattr(result, k) for k in fields}}


def record_end(store: RunStore, run_id: str, summary: dict[str, Any], final: Path | None) -> None:
    """End a run that its own loop ended (``summary_of``), pointing at its final checkpoint, or at its last
    epoch's when it has none (diverged). Only a stopped run keeps its training state: the others will not go on."""
    status = Status(summary["status"])
    if status != Status.STOPPED:
        store.train_state(run_id).unlink(missing_ok=True)
    epochs = store.epoch_checkpoints(run_id) if final is None else []
    checkpoint = final if final is not None else (epochs[-1] if epochs else None)
    results = {k: v for k, v in summary.items() if k != "status"}
    store.finish(run_id, status, checkpoint=str(checkpoint) if checkpoint else None, **results)


def final_metadata(
    run_id: str,
    run: RunConfig,
    data: Dataset,
    epochs: int,
    test_accuracy: float | None,
    val_accuracy: float | None,
) -> dict[str, Any]:
    """What a run's final checkpoint says about itself: a worker's run and a sweep's trial save the same keys
    (``classes`` and ``preprocess`` let Explain and predict treat outside images the way the data was made)."""
    return {
        **data_records(data.name, data.classes, data.preprocess),
        "run_id": run_id,
        "epochs": epochs,
        "test_accuracy": test_accuracy,
        "val_accuracy": val_accuracy,
        "train": run.train.to_dict(),
    }


def epoch_metadata(event: Event, data: Dataset) -> dict[str, Any]:
    """What each epoch's checkpoint says about itself (the Filters page scrubs through them): like the final
    checkpoint, the data's classes and preprocessing, so an outside photo reaches an epoch as it would the end."""
    return {
        "epoch": event.epoch,
        "val_accuracy": event.val_accuracy,
        **data_records(data.name, data.classes, data.preprocess),
    }


def data_records(dataset: str, classes: list[str], preprocess: str) -> dict[str, Any]:
    """The data a checkpoint's model was trained on: what Explain, Filters and predict need for an outside image."""
    return {"dataset": dataset, "classes": classes, "preprocess": preprocess}


def repair_epoch_records(store: RunStore) -> list[str]:
    """Give the epoch checkpoints that older versions saved without them (every epoch read as an MNIST digit
    model) the classes and preprocessing of their run's final checkpoint; the ids of the runs repaired.

    Only sidecars are read to decide, so a store whose records are right costs one small read per run."""
    repaired = []
    for run in store.list():
        epochs = store.epoch_checkpoints(run.id)
        final = _sidecar(Path(run.checkpoint)) if run.checkpoint else {}
        if not epochs or "preprocess" not in final or "preprocess" in _sidecar(epochs[0]):
            continue
        records = data_records(final.get("dataset", run.dataset), final.get("classes", []), final["preprocess"])
        try:
            for path in epochs:
                old = load_checkpoint(path)
                kept = {k: v for k, v in old.metadata.items() if k != HASH_KEY}
                save_checkpoint(path, old.model, old.config, kept | records)
        except CnnLabError:  # a damaged file stays as it is: loading it says what is wrong
            continue
        repaired.append(run.id)
    return repaired


def _sidecar(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def predictions_record(data: Dataset, predictions: torch.Tensor, confidences: torch.Tensor) -> dict[str, Any]:
    """``predictions.json``: every test image's label, prediction and confidence (confusion matrices, Explain)."""
    return {
        "labels": data.test_y.tolist(),
        "predictions": predictions.tolist(),
        "confidences": [round(c, 4) for c in confidences.tolist()],
        "classes": data.classes,
    }


def recorder(store: RunStore, run_id: str, listener: Callable[[Event], None] | None) -> Callable[[Event], None]:
    """The loop's listener that logs each step and epoch event to the store, then hands every event on."""

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
        return cast(bool, last[1])

    return should_stop


def _epoch_saver(store: RunStore, record: Run, data: Dataset) -> Callable[[ConvNet, Event, TrainState], None]:
    def save(model: ConvNet, event: Event, state: TrainState) -> None:
        path = save_epoch(store.run_dir(record.id), record, data, model, event, state)
        store.record_epoch(record.id, event.epoch, path)

    return save


def save_epoch(folder: Path, record: Run, data: Dataset, model: ConvNet, event: Event, state: TrainState) -> Path:
    """An epoch's checkpoint, then the training state that goes on from it, under ``folder`` as in a run folder
    (``RunStore.train_state``); the checkpoint's path."""
    path = folder / EPOCHS / f"epoch_{event.epoch:03d}.safetensors"
    save_checkpoint(path, model, record.config.model, epoch_metadata(event, data))
    # After the checkpoint: a crash between the two leaves the previous epoch's state, and resuming from it
    # drops this epoch's checkpoint and metrics (RunStore.resume), so nothing is recorded twice.
    save_state(folder / EPOCHS / TRAIN_STATE, state)
    return path
