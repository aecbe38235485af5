"""A finished sweep written straight into a run store, as the driver's callback records one (no Ray)."""

from dataclasses import replace

from cnn_core.config import RunConfig
from cnn_core.config.sweep import SweepConfig
from cnn_core.runs import RunStore, Status, SweepStatus
from cnn_core.sweeps.space import plan, trial_name


def finished_sweep(store: RunStore, spec: dict, accuracy=None) -> str:
    """Create and finish a sweep for ``spec``; each trial completed with ``accuracy(i, params)``; its id."""
    config = SweepConfig.from_dict(spec)
    sweep_id = store.sweeps.create(config, claim=True)
    for i, trial in enumerate(plan(config).trials):
        run = replace(trial.run, train=replace(trial.run.train, epochs=1))
        name = trial_name(trial.params, trial.seed)
        run_id = store.create(RunConfig.from_dict(run.to_dict()), "mnist", name, group_id=sweep_id, claim=True)
        acc = accuracy(i, trial.params) if accuracy else 0.9 + 0.005 * i
        store.finish(run_id, Status.COMPLETED, epochs_done=1, val_accuracy=acc, test_accuracy=acc - 0.01)
        store.sweeps.add_trial(sweep_id, f"t{i}", run_id, trial.params, trial.seed)
    store.sweeps.finish(sweep_id, SweepStatus.COMPLETED)
    return sweep_id
