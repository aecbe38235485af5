"""The Tune ``Callback`` in the driver: the only writer of the run store during a sweep.

Each trial becomes an ordinary run (its ``group_id`` is the sweep): created when Tune starts the trial,
one metric row and one epoch checkpoint per report, then the final checkpoint and ``predictions.json`` in
its run folder, so Compare, Filters and Explain open a trial like any run. A trial the scheduler stops
early is ``pruned``, one that raises is ``failed`` with its error, and the sweep goes on. A trial that Tune
restores from a checkpoint (a resumed sweep) keeps its run, which goes on after that checkpoint's epoch
(``RunStore.resume``); one with no checkpoint starts again, and so does its record.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ray.tune import Callback

from cnn_core.config.sweep import Invalid
from cnn_core.errors import CannotResume, InvalidConfig
from cnn_core.model.checkpoint import HASH_KEY, atomic_write, load_checkpoint, save_checkpoint
from cnn_core.runs import RunStore, Status
from cnn_core.sweeps.space import apply, trial_name
from cnn_core.sweeps.trainable import FINAL, INVALID, trial_of

if TYPE_CHECKING:
    from ray.tune import Checkpoint
    from ray.tune.experiment import Trial

EPOCH_FIELDS: tuple[str, ...]
EPOCH_FIELDS = ("epoch", "step", "total_steps", "loss", "accuracy", "val_loss", "val_accuracy", "lr")
EPOCH_FIELDS += ("images_per_s", "elapsed")


@dataclass
class Progress:
    """What the progress bar and the page show: trials by status and the best validation accuracy so far."""

    total: int
    done: int = 0
    running: int = 0
    pruned: int = 0
    failed: int = 0
    invalid: int = 0
    best: float | None = None
    counted: set[str] = field(default_factory=set)


# Progress listeners by sweep id. Tune pickles its callbacks into the experiment state (``Tuner.restore`` brings
# them back), so the recorder keeps only what pickles (the store's folder and the sweep id) and looks its
# listener up here.
LISTENERS: dict[str, Callable[[Progress], None]] = {}


class TrialRecorder(Callback):
    """Writes every trial of one sweep into the run store (see the module docstring)."""

    def __init__(self, store: RunStore, sweep_id: str) -> None:
        self._setup(store, sweep_id)

    def _setup(self, store: RunStore, sweep_id: str) -> None:
        from cnn_core.sweeps.space import plan

        self.store, self.sweep_id = store, sweep_id
        record = store.sweeps.get(sweep_id)
        self.sweep, self.owner, self.shared = record.config, record.owner, record.shared  # trials are the owner's
        self.plan = plan(self.sweep).trials
        self.progress = Progress(self.sweep.trial_count)
        self._runs: dict[str, str] = {t.trial_id: t.run_id for t in store.sweeps.trials(sweep_id)}
        self._last: dict[str, dict[str, Any]] = {}
        for run_id in self._runs.values():  # a resumed sweep: what finished before counts
            self._count(self.store.get(run_id).status, run_id)

    def __getstate__(self) -> dict[str, str]:
        return {"root": str(self.store.root), "sweep_id": self.sweep_id}

    def __setstate__(self, state: dict[str, str]) -> None:
        self._setup(RunStore(state["root"]), state["sweep_id"])

    def on_progress(self, progress: Progress) -> None:
        listener = LISTENERS.get(self.sweep_id)
        if listener is not None:
            listener(progress)

    # -- Tune's hooks --------------------------------------------------------------------------------------------

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        params, seed = trial_of(self.sweep, self.plan, trial.config)
        old = self._runs.pop(trial.trial_id, None)
        if old is not None:  # started again after an interruption
            if self.store.get(old).status is Status.COMPLETED:  # Tune's state predates its end: keep it, ignore
                return  # this second attempt (with no run id mapped, its reports are not recorded)
            self.store.interrupt(old, "restarted when the sweep resumed")
            if self._resume(old, trial):
                return
            self.store.delete(old)  # no checkpoint to go on from: it trains from scratch, so its record does too
        try:
            run = apply(self.sweep.base, params, seed)
        except InvalidConfig:  # an invalid Optuna draw: it is listed with its reason, not recorded as a run
            return
        run_id = self.store.create(
            run,
            dataset=self.sweep.dataset,
            name=trial_name(params, seed),
            data_dir=self.sweep.data_dir,
            group_id=self.sweep_id,
            claim=True,
            owner=self.owner,
            shared=self.shared,
        )
        self.store.start(run_id, os.getpid(), "ray")  # the driver's pid: a dead driver orphans its trials
        self.store.sweeps.add_trial(self.sweep_id, trial.trial_id, run_id, params, seed)
        self._runs[trial.trial_id] = run_id
        self.progress.running += 1
        self.on_progress(self.progress)

    def _resume(self, run_id: str, trial: Trial) -> bool:
        """Keep a restored trial's run, going on after the epoch of the checkpoint Tune restores it from (the
        trainable reads the same one); False when there is none."""
        saved = trial.latest_checkpoint_result
        epoch = saved.metrics.get("epoch") if saved is not None and saved.checkpoint is not None else None
        if not isinstance(epoch, int) or epoch < 1:
            return False
        try:
            self.store.resume(run_id, epoch, claim=True)
        except CannotResume:  # diverged or pruned: Tune does not restart those; should it, train afresh
            return False
        self.store.start(run_id, os.getpid(), "ray")
        self._runs[trial.trial_id] = run_id
        if run_id in self.progress.counted:  # counted as ended (interrupted) when the sweep resumed: it runs again
            self.progress.counted.discard(run_id)
            self.progress.done -= 1
        self.progress.running += 1
        self.on_progress(self.progress)
        return True

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        if INVALID in result:
            params, _ = trial_of(self.sweep, self.plan, trial.config)
            self.store.sweeps.add_invalid(self.sweep_id, [Invalid(params, result[INVALID])])
            self.progress.invalid += 1
            return
        run_id = self._runs.get(trial.trial_id)
        if run_id is None or "loss" not in result:
            self._last[trial.trial_id] = result
            return
        if trial.trial_id not in self._last:  # the first report says where it trains
            self.store.start(run_id, os.getpid(), result.get("device") or "ray", node=result.get("node"))
            self.store.sweeps.set_node(self.sweep_id, trial.trial_id, result.get("node") or "")
        self._last[trial.trial_id] = result
        self.store.log_metric(run_id, {"kind": "epoch", **{k: result.get(k) for k in EPOCH_FIELDS}})
        if result.get("val_accuracy") is not None:
            self.progress.best = max(self.progress.best or 0.0, result["val_accuracy"])
        self.store.sweeps.beat(self.sweep_id)

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: Trial, checkpoint: Checkpoint, **info: Any
    ) -> None:
        run_id = self._runs.get(trial.trial_id)
        if run_id is None:
            return
        folder = self.store.run_dir(run_id)
        with checkpoint.as_directory() as tmp:
            src = Path(tmp)
            meta = json.loads((src / "epoch.json").read_text())  # save_checkpoint's sidecar
            epoch_path = folder / "epochs" / f"epoch_{meta['epoch']:03d}.safetensors"
            epoch_path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in (".safetensors", ".json"):  # atomically: a killed driver leaves no half-written file
                atomic_write(epoch_path.with_suffix(suffix), (src / f"epoch{suffix}").read_bytes())
            self.store.record_epoch(run_id, meta["epoch"], epoch_path)
            if (src / "model.safetensors").is_file():
                final = load_checkpoint(src / "model.safetensors")  # validated on the way in
                metadata = {k: v for k, v in final.metadata.items() if k != HASH_KEY} | {"run_id": run_id}
                save_checkpoint(folder / "model.safetensors", final.model, final.config, metadata)
                atomic_write(folder / "predictions.json", (src / "predictions.json").read_bytes())

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        run_id = self._runs.get(trial.trial_id)
        if run_id is None:
            return
        last = self._last.get(trial.trial_id, {})
        epochs = self.store.epoch_checkpoints(run_id)
        final = self.store.run_dir(run_id) / "model.safetensors"
        if last.get(FINAL):
            status = Status.COMPLETED
        elif last.get("status") == Status.DIVERGED:
            status = Status.DIVERGED
        else:  # Tune ended it before its last epoch: the scheduler (or the user) stopped it
            status = Status.STOPPED if self.store.sweeps.stop_requested(self.sweep_id) else Status.PRUNED
        self.store.finish(
            run_id,
            status,
            epochs_done=len(epochs),
            test_accuracy=last.get("test_accuracy") if last.get(FINAL) else None,
            test_loss=last.get("test_loss") if last.get(FINAL) else None,
            val_accuracy=last.get("val_accuracy"),
            seconds=last.get("elapsed"),
            images_per_s=last.get("images_per_s"),
            checkpoint=str(final if final.is_file() else epochs[-1]) if (final.is_file() or epochs) else None,
            error=last.get("error"),
        )
        self._settle(run_id)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        run_id = self._runs.get(trial.trial_id)
        if run_id is None:
            return
        self.store.fail(run_id, _error_of(trial))
        self._settle(run_id)

    # -- counting ------------------------------------------------------------------------------------------------

    def _settle(self, run_id: str) -> None:
        self.progress.running = max(self.progress.running - 1, 0)
        self._count(self.store.get(run_id).status, run_id)
        self.on_progress(self.progress)

    def _count(self, status: Status, run_id: str) -> None:
        if status.active or run_id in self.progress.counted:
            return
        self.progress.counted.add(run_id)
        self.progress.done += 1
        self.progress.pruned += status is Status.PRUNED
        self.progress.failed += status in (Status.FAILED, Status.DIVERGED)


def _error_of(trial: Trial) -> str:
    """The trial's exception as one line: its type and message, without Ray's wrapping traceback."""
    text = ""
    path = getattr(trial, "error_file", None) or getattr(getattr(trial, "run_metadata", None), "error_filename", None)
    if path and Path(path).is_file():
        text = Path(path).read_text(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    tail = next((line for line in reversed(lines) if ": " in line and not line.startswith("File ")), "")
    return (tail or "the trial raised an error (see the sweep's Tune folder)")[:500]
