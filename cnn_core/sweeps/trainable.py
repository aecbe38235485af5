"""The Ray Tune trainable: one trial is one call of the existing training loop, ``cnn_core.training.loop.train``.

It runs in a Ray worker, here or on another node of a cluster, and never touches the run store (the
driver's callback is its only writer): every epoch it reports its metrics and a checkpoint to Tune, and
the last epoch's report also carries the test accuracy and the test predictions, so that a trial the
scheduler stops at its last rung has already said everything a completed run says.

Each checkpoint also holds the loop's training state (``train_state.safetensors``), so a trial that Tune
restores (a sweep resumed after its driver was killed) goes on after its last reported epoch
(``tune.get_checkpoint()``) instead of starting again from epoch 1.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_core.config.sweep import SweepConfig
from cnn_core.errors import InvalidConfig
from cnn_core.sweeps.space import Trial, apply

if TYPE_CHECKING:
    from cnn_core.config import RunConfig
    from cnn_core.data import Dataset
    from cnn_core.model import ConvNet
    from cnn_core.training.loop import Event
    from cnn_core.training.state import TrainState

STATE_FILE = "train_state.safetensors"  # in each Tune checkpoint, beside epoch.safetensors
FINAL = "final"  # result key: this report is the trial's last epoch, with test results
INVALID = "invalid"  # result key: an Optuna draw broke a config rule (its reason); nothing was trained


def trial_of(sweep: SweepConfig, trials: list[Trial], config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The parameters and seed of a Tune config: an index into the plan (grid, random), or Optuna's draw
    with the seed picked by the ``Repeater``'s ``__trial_index__``."""
    if "index" in config:
        trial = trials[config["index"]]
        return trial.params, trial.seed
    params = {p.path: _plain(config[p.path]) for p in sweep.space}
    return params, sweep.seeds[config.get("__trial_index__", 0) % len(sweep.seeds)]


def train_trial(config: dict[str, Any], sweep_json: str, trials: list[Trial]) -> None:
    """Train one trial, reporting each epoch to Tune; a crash is left to Tune (the trial becomes failed)."""
    import ray
    from ray import tune

    from cnn_core.config import budget
    from cnn_core.data import check_fits, load_dataset
    from cnn_core.training.loop import run_device_label, train

    sweep = SweepConfig.from_json(sweep_json)
    params, seed = trial_of(sweep, trials, config)
    try:
        run = apply(sweep.base, params, seed)
    except InvalidConfig as err:  # Optuna drew a config that breaks a rule: tell its searcher it scores 0
        tune.report({INVALID: str(err), "val_accuracy": 0.0, "epoch": 0})
        return
    data = load_dataset(sweep.dataset, data_dir=sweep.data_dir, val_fraction=run.train.val_fraction)
    check_fits(data, run.model)
    budget.check(run, train_images=len(data.train_y))
    where = {
        "node": ray.get_runtime_context().get_node_id(),
        "device": run_device_label(run.train),
    }
    reporter = _EpochReporter(run, data, where)
    saved = _restored_state()
    result = train(run, data, on_epoch_end=reporter, resume=saved)
    if saved is not None and saved.epoch == run.train.epochs and result.history:  # it had reported all but its end
        reporter(result.model, result.history[-1], saved)
    if result.status.value != "completed":  # diverged (the loop refuses to go on): say so, with its reason
        tune.report(
            {
                "epoch": result.epochs_done,
                "val_accuracy": result.val_accuracy or 0.0,
                "status": result.status.value,
                "error": result.error,
                **where,
            }
        )


def _restored_state() -> TrainState | None:
    """The training state of the checkpoint Tune restores this trial from; None for a trial that starts afresh."""
    from ray import tune

    from cnn_core.training.state import load_state

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return load_state(Path(folder) / STATE_FILE)


class _EpochReporter:
    """``on_epoch_end`` for ``train``: each epoch's metrics, weights and training state to Tune; test results at
    the last."""

    def __init__(self, run: RunConfig, data: Dataset, where: dict[str, str]) -> None:
        self.run, self.data, self.where = run, data, where

    def __call__(self, model: ConvNet, event: Event, state: TrainState) -> None:
        from ray import tune

        from cnn_core.model.checkpoint import atomic_write, save_checkpoint
        from cnn_core.runs.runner import epoch_metadata, final_metadata, predictions_record
        from cnn_core.training.loop import evaluate
        from cnn_core.training.state import save_state

        metrics = {**event.to_dict(), **self.where}
        metrics.pop("status", None)
        with tempfile.TemporaryDirectory(prefix="cnn-lab-trial-") as tmp:
            folder = Path(tmp)
            save_checkpoint(folder / "epoch.safetensors", model, self.run.model, epoch_metadata(event, self.data))
            save_state(folder / STATE_FILE, state)
            if event.epoch == self.run.train.epochs:  # the last epoch: evaluate now, as train() will after it
                test_loss, test_acc, preds, confidences = evaluate(model, self.data.test_x, self.data.test_y)
                meta = final_metadata("", self.run, self.data, event.epoch, test_acc, event.val_accuracy)
                save_checkpoint(folder / "model.safetensors", model, self.run.model, meta)
                record = predictions_record(self.data, preds, confidences)
                atomic_write(folder / "predictions.json", json.dumps(record).encode())
                metrics.update({FINAL: True, "test_accuracy": test_acc, "test_loss": test_loss})
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _plain(value: Any) -> Any:
    """numpy scalars from a searcher as plain Python numbers (JSON and the config rules want those)."""
    return value.item() if hasattr(value, "item") else value
