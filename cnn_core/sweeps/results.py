"""A sweep's results as tables: one row per trial, mean ± std over seeds, and which parameters mattered.

The same functions feed ``cnn-lab sweep --json``, the Sweep page's tables and its Altair charts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from cnn_core.config.sweep import Invalid, parameter_words
from cnn_core.runs import RunStore, Status, Sweep

METRIC = "val_accuracy"  # what the sweep optimises (and ASHA prunes on): the test set stays for the end


def trial_frame(store: RunStore, sweep_id: str) -> pd.DataFrame:
    """One row per trial: run id, name, status, epochs, accuracies, seed and one column per varied path."""
    runs = {r.id: r for r in store.list(group=sweep_id)}
    rows = []
    for trial in store.sweeps.trials(sweep_id):
        run = runs.get(trial.run_id)
        if run is None:
            continue
        rows.append(
            {
                "run_id": run.id,
                "name": run.label,
                "status": run.status.value,
                "epochs": run.epochs_done,
                "val_accuracy": run.val_accuracy,
                "test_accuracy": run.test_accuracy,
                "seed": trial.seed,
                "node": trial.node,
                "ended": run.ended,
                **{path: _shown(v) for path, v in trial.params.items()},
            }
        )
    return pd.DataFrame(rows)


def varied(store: RunStore, sweep_id: str) -> list[str]:
    """The paths the sweep varies, in the spec's order."""
    return [p.path for p in store.sweeps.get(sweep_id).config.space]


def sweep_summary(store: RunStore, sweep_id: str, seconds: float | None = None) -> dict[str, Any]:
    """What ``cnn-lab sweep --json`` prints last."""
    sweep = store.sweeps.get(sweep_id)
    runs = {r.id: r for r in store.list(group=sweep_id)}
    trials = []
    for trial in store.sweeps.trials(sweep_id):
        run = runs.get(trial.run_id)
        if run is not None:
            trials.append(
                {
                    "run_id": run.id,
                    "name": run.label,
                    "status": run.status.value,
                    "params": trial.params,
                    "seed": trial.seed,
                    "val_accuracy": run.val_accuracy,
                    "test_accuracy": run.test_accuracy,
                    "error": run.error,
                }
            )
    return {
        "sweep_id": sweep_id,
        "status": sweep.status.value,
        "trials": trials,
        "invalid": [{"params": i.params, "reason": i.reason} for i in sweep.invalid],
        "seconds": seconds if seconds is not None else _elapsed(sweep),
    }


def mean_std(frame: pd.DataFrame, path: str, metric: str = METRIC) -> pd.DataFrame:
    """The metric against one varied path: mean, std and count over the trials sharing its value (seeds and
    the other paths pooled), finished trials only (a pruned trial's accuracy is from fewer epochs)."""
    done = frame[frame["status"] == Status.COMPLETED.value].dropna(subset=[metric])
    if done.empty or path not in done:
        return pd.DataFrame(columns=["value", "mean", "std", "n"])
    grouped = done.groupby(path, sort=True)[metric]
    out = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1).fillna(0.0), "n": grouped.size()})
    return out.reset_index().rename(columns={path: "value"})


def importance(frame: pd.DataFrame, paths: list[str], metric: str = METRIC) -> pd.DataFrame:
    """How much each varied path explains the metric, by Optuna's ``get_param_importances`` (fANOVA over the
    finished trials, fed to an in-memory study); needs 2+ finished trials and 2+ values of a path."""
    import optuna

    done = frame[frame["status"] == Status.COMPLETED.value].dropna(subset=[metric])
    moving = [p for p in paths if p in done and done[p].nunique() > 1]
    if len(done) < 2 or not moving:
        return pd.DataFrame(columns=["parameter", "importance"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    choices = {p: sorted(done[p].unique().tolist(), key=str) for p in moving}
    for _, row in done.iterrows():
        params = {p: row[p] for p in moving}
        dists: dict[str, optuna.distributions.BaseDistribution] = {
            p: optuna.distributions.CategoricalDistribution(choices[p]) for p in moving
        }
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=float(row[metric])))
    scores = optuna.importance.get_param_importances(study)
    return pd.DataFrame({"parameter": list(scores), "importance": list(scores.values())})


def best_trial(frame: pd.DataFrame, metric: str = METRIC) -> dict[str, Any] | None:
    """The finished trial with the highest metric (ties: the first), or None."""
    done = frame[frame["status"] == Status.COMPLETED.value].dropna(subset=[metric])
    return None if done.empty else done.sort_values(metric, ascending=False, kind="stable").iloc[0].to_dict()


def _shown(value: Any) -> Any:
    """Lists (an ``fc`` width list) as text, so a column stays one plain type for grouping and charts."""
    return str(value) if isinstance(value, (list, tuple, dict)) else value


def _elapsed(sweep: Sweep) -> float | None:
    if sweep.started is None:
        return None
    return (sweep.ended or sweep.heartbeat or sweep.started) - sweep.started


def invalid_frame(invalid: Iterable[Invalid]) -> pd.DataFrame:
    """The skipped configurations (``space.Invalid``) as a table: each parameter in the Train page's words, and
    the reason."""
    return pd.DataFrame([{**{parameter_words(k): v for k, v in i.params.items()}, "reason": i.reason} for i in invalid])


def in_words(frame: pd.DataFrame) -> pd.DataFrame:
    """A trial table with its parameter columns named as the Train page names them."""
    return frame.rename(columns={c: parameter_words(c) for c in frame.columns if c.startswith(("model.", "train."))})
