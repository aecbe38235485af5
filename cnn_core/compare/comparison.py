"""Comparing runs: curves, summaries, the hyperparameters that differ, and max-vs-average pooling.

Pure functions over what the run store returns (rows, metric rows, saved test predictions); the
Compare page only draws their results.
"""

from __future__ import annotations

import json
from dataclasses import replace
from statistics import mean, stdev
from typing import Any, cast

import numpy as np
import pandas as pd

from cnn_core.config import ModelConfig, RunConfig, setting_words
from cnn_core.runs import Run, RunStore, Status

CURVE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
LOWER_IS_BETTER = ("loss", "val_loss")


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"conv": [{"stride": 1}]}}`` -> ``{"model.conv1.stride": 1}`` (conv blocks numbered like layers)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, name + "."))
        elif key == "conv" and isinstance(value, list):
            for i, block in enumerate(value, start=1):
                flat.update(flatten_config(block, f"{prefix}conv{i}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def changed_settings(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two config dicts, one ``key: old → new`` each (conv blocks numbered like layers)."""
    old, new = flatten_config(before), flatten_config(after)
    return [
        f"{k}: {old.get(k, '—')} → {new.get(k, '—')}" for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)
    ]


def described_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``changed_settings`` in the Train page's words: "conv1 stride 1 → 2", not "model.conv1.stride: 1 → 2"."""
    old, new = flatten_config(before), flatten_config(after)
    return [
        f"{setting_words(k)} {old.get(k, '—')} → {new.get(k, '—')}"
        for k in dict.fromkeys([*old, *new])
        if old.get(k) != new.get(k)
    ]


def config_diff(runs: list[Run]) -> pd.DataFrame:
    """A table of only the hyperparameters that differ between runs (a row per key, a column per run)."""
    flat = {
        f"{run.label} ({run.id[-6:]})": {"dataset": run.dataset, **flatten_config(run.config.to_dict())} for run in runs
    }
    table = pd.DataFrame(flat)
    if table.empty:
        return table
    differs = table.astype(str).nunique(axis=1) > 1
    return table[differs].rename_axis("hyperparameter").reset_index()


def curves(store: RunStore, run_ids: list[str], kind: str = "epoch") -> pd.DataFrame:
    """Long-form metric rows (run, name, epoch/step, metric, value) for overlaid charts."""
    frames = []
    for run_id in run_ids:
        run = store.get(run_id)
        metrics = pd.DataFrame(store.metrics(run_id, kind))
        if metrics.empty:
            continue
        x = "epoch" if kind == "epoch" else "step"
        long = metrics.melt(
            id_vars=[x, "elapsed"],
            value_vars=[m for m in CURVE_METRICS if m in metrics],
            var_name="metric",
            value_name="value",
        ).dropna(subset=["value"])
        long["run"], long["name"] = run_id, run.label
        long["pooling"], long["seed"] = run.pooling, run.seed
        frames.append(long)
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["epoch", "elapsed", "metric", "value", "run", "name", "pooling", "seed"])
    )


def smooth(values: list[float] | np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard-style exponential moving average, bias-corrected so the start is not dragged to 0."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i) if weight > 0 else v)
    return np.asarray(out)


def metric_summary(long: pd.DataFrame) -> pd.DataFrame:
    """Per run and metric: the best value (lowest loss, highest accuracy) and the final one."""
    rows = []
    for (name, metric), group in long.groupby(["name", "metric"], sort=False):
        values = group["value"].to_numpy()
        best = values.min() if metric in LOWER_IS_BETTER else values.max()
        rows.append({"run": name, "metric": metric, "best": best, "final": values[-1]})
    return pd.DataFrame(rows)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    return counts


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    counts = confusion_matrix(labels, predictions, num_classes)
    return cast(np.ndarray, np.diag(counts) / np.maximum(counts.sum(axis=1), 1))


def summed_confusion(predictions: list[dict[str, Any]]) -> np.ndarray:
    """One confusion matrix over several runs' saved test predictions (for example every seed of a pooling)."""
    # sum() starts from 0: callers pass at least one run, so the result is an array
    return cast(
        np.ndarray,
        sum(
            confusion_matrix(np.array(p["labels"]), np.array(p["predictions"]), len(p["classes"])) for p in predictions
        ),
    )


def model_name(run: RunConfig) -> str:
    """'LeNet-5' for the article's network (with any pooling), else its conv depths: '2 conv blocks (8-16)'."""
    lenet = ModelConfig()
    if run.model.with_pooling("max") == lenet.with_pooling("max"):
        return "LeNet-5"
    depths = "-".join(str(b.out_channels) for b in run.model.conv)
    return f"{len(run.model.conv)} conv block{'s' * (len(run.model.conv) > 1)} ({depths})"


def comparison_title(members: list[Run]) -> str:
    """What a max-vs-avg comparison compares: 'LeNet-5 · max vs avg · 3 seeds · 2 epochs · mnist'."""
    first = members[0]
    seeds = len({r.seed for r in members})
    return (
        f"{model_name(first.config)} · max vs avg · {seeds} seed{'s' * (seeds > 1)} · {first.epochs} "
        f"epoch{'s' * (first.epochs > 1)} · {first.dataset}"
    )


def pooling_pair(run: RunConfig, pool: str, seed: int) -> RunConfig:
    """The same run with another pooling and seed: one half of a fair max-vs-average pair."""
    return replace(run, model=run.model.with_pooling(pool), train=replace(run.train, seed=seed))


def confident_mistakes(predictions: dict[str, Any], limit: int = 12) -> list[int]:
    """Test images the model got wrong, the most confident mistakes first (runs saved before confidences were
    recorded: in test-set order)."""
    labels, predicted = np.array(predictions["labels"]), np.array(predictions["predictions"])
    wrong = np.flatnonzero(labels != predicted)
    if "confidences" in predictions:
        wrong = wrong[np.argsort(-np.array(predictions["confidences"])[wrong], kind="stable")]
    return cast(list[int], wrong[:limit].tolist())


def load_predictions(store: RunStore, run_id: str) -> dict[str, Any] | None:
    path = store.run_dir(run_id) / "predictions.json"
    return json.loads(path.read_text()) if path.is_file() else None


def pooling_comparison(store: RunStore, run_ids: list[str]) -> dict[str, Any]:
    """Max vs average pooling over seeds: accuracy mean ± std, per-seed points, epoch time, per-class gap, verdict."""
    per_run, members = [], [store.get(run_id) for run_id in run_ids]
    for run in members:
        if run.status is not Status.COMPLETED:
            continue
        run_id, preds = run.id, load_predictions(store, run.id)
        per_run.append(
            {
                "run": run_id,
                "pooling": run.pooling,
                "seed": run.seed,
                "test_accuracy": run.test_accuracy,
                **steady_epoch_speed(store, run),
                "per_class": per_class_accuracy(
                    np.array(preds["labels"]), np.array(preds["predictions"]), len(preds["classes"])
                )
                if preds
                else None,
                "classes": preds["classes"] if preds else None,
            }
        )
    runs = pd.DataFrame(per_run)
    result: dict[str, Any] = {"runs": runs, "summary": pd.DataFrame(), "per_class": pd.DataFrame(), "verdict": ""}
    result["finished"] = sum(run.finished for run in members)  # of len(run_ids)
    result["verdict"] = _waiting(members)
    if runs.empty or runs["pooling"].nunique() < 2:
        result["verdict"] = result["verdict"] or "No pooling has a completed run to compare: see the runs' errors."
        return result
    summary = (
        runs.groupby("pooling")
        .agg(
            mean=("test_accuracy", "mean"),
            n=("test_accuracy", "size"),
            seconds_per_epoch=("seconds_per_epoch", "mean"),
            images_per_s=("images_per_s", "mean"),
        )
        .reset_index()
    )
    summary["std"] = [stdev(g) if len(g) > 1 else 0.0 for _, g in runs.groupby("pooling")["test_accuracy"]]
    result["summary"] = summary
    result["verdict"] = result["verdict"] or _verdict(runs)
    with_classes = runs.dropna(subset=["per_class"]) if "per_class" in runs else runs.iloc[0:0]
    if with_classes["pooling"].nunique() == 2:
        mean_per_class = {
            p: np.mean(np.stack(g["per_class"].to_list()), axis=0) for p, g in with_classes.groupby("pooling")
        }
        classes = with_classes["classes"].iloc[0]
        result["per_class"] = pd.DataFrame(
            {"class": classes, "max − avg (points)": 100 * (mean_per_class["max"] - mean_per_class["avg"])}
        )
    return result


EPOCH_TIME_HOW = (
    "Wall-clock time from one epoch's end to the next (its training steps, validation and checkpoint), the "
    "median of the epochs after the first: the first pays the start-up (loading data, warming kernels), which "
    "would favour whichever pooling happened to start second. The images/s beside it is the same measurement "
    "(training images per epoch ÷ that time). Anything sharing the processor meanwhile (another run, a page "
    "redrawing while it trains) makes an epoch slower, so compare times of runs that trained alone."
)


def steady_epoch_speed(store: RunStore, run: Run) -> dict[str, float]:
    """Seconds per epoch without the warm-up (the median of epochs 2, 3, …; epoch 1 alone when that is all),
    and the training images per second that time means, so the two numbers can never disagree."""
    rows = [m for m in store.metrics(run.id, "epoch") if m["elapsed"] is not None]
    elapsed = [m["elapsed"] for m in rows]
    steps = np.diff(elapsed)
    if len(steps):
        seconds = float(np.median(steps))
    else:
        seconds = elapsed[0] if elapsed else (run.seconds or 0.0) / max(run.epochs_done, 1)
    last = rows[-1] if rows else None
    per_epoch = last["images_per_s"] * last["elapsed"] / last["epoch"] if last and last["images_per_s"] else 0.0
    return {"seconds_per_epoch": seconds, "images_per_s": per_epoch / seconds if seconds > 0 else float("nan")}


def steady_epoch_seconds(store: RunStore, run: Run) -> float:
    """Seconds per epoch without the warm-up (see ``steady_epoch_speed``)."""
    return steady_epoch_speed(store, run)["seconds_per_epoch"]


def _waiting(members: list[Run]) -> str:
    """While any run of the comparison is still queued or running: say so, and name no winner yet."""
    active = [r for r in members if r.status.active]
    if not active:
        return ""
    done = {p: sum(r.finished for r in members if r.pooling == p) for p in ("max", "avg")}
    total = {p: sum(r.pooling == p for r in members) for p in ("max", "avg")}
    return (
        f"Waiting for {len(active)} of {len(members)} runs to finish (max {done['max']}/{total['max']}, "
        f"avg {done['avg']}/{total['avg']}) before naming a winner: every seed of both poolings counts."
    )


def _verdict(runs: pd.DataFrame) -> str:
    accs = {p: runs.loc[runs["pooling"] == p, "test_accuracy"].tolist() for p in ("max", "avg")}
    if not accs["max"] or not accs["avg"]:
        return "Waiting for at least one finished run of each pooling."
    diff = 100 * (mean(accs["max"]) - mean(accs["avg"]))
    better = "max" if diff > 0 else "average"
    spreads = [100 * stdev(a) for a in accs.values() if len(a) > 1]
    if not spreads:
        return (
            f"{better.capitalize()} pooling is ahead by {abs(diff):.2f} points, but with one seed there is no "
            f"seed-to-seed spread to compare it with: run more seeds before concluding."
        )
    spread = max(spreads)
    if abs(diff) > 2 * spread:
        return (
            f"{better.capitalize()} pooling is better here: the gap ({abs(diff):.2f} points) is larger than "
            f"twice the seed-to-seed spread (std up to {spread:.2f} points)."
        )
    return (
        f"No clear winner: the gap ({abs(diff):.2f} points, {better} ahead) is within the seed-to-seed "
        f"spread (std up to {spread:.2f} points)."
    )


BUNDLED_TEST_SETS = {
    "test_accuracy": "the 1,000 held-out sample digits",
    "official_test_accuracy": "MNIST's 10,000 test digits",
}


def bundled_verdict(rows: list[dict[str, Any]]) -> str:
    """What the bundled max and average pooling models show, measured (``checkpoint.bundled_checkpoints`` rows):
    who is ahead on each test set, and why one pair cannot settle it (the article says max usually wins)."""
    by_pool = {("max" if row["name"].endswith("max") else "avg"): row for row in rows}
    if set(by_pool) != {"max", "avg"}:
        return ""
    leads, leaders = [], set()
    for key, where in BUNDLED_TEST_SETS.items():
        mx, av = by_pool["max"].get(key), by_pool["avg"].get(key)
        if mx is None or av is None or mx != mx or av != av:
            continue
        ahead = "max" if mx > av else "average" if av > mx else None
        gap = f"{100 * abs(mx - av):.2f} points" if ahead else "level"
        leads.append(f"on {where}, {ahead + ' pooling is ahead by ' + gap if ahead else 'they are ' + gap}")
        leaders.add(ahead)
    if not leads:
        return ""
    swap = " (here the winner even changes with the test set)" if {"max", "average"} <= leaders else ""
    return (
        f"Measured: {'; '.join(leads)}. Each is one model trained once, so a gap this size is within what "
        f"another seed changes{swap}. The article's “max usually wins” is a tendency over many runs: Compare "
        "measures it fairly over several seeds."
    )
