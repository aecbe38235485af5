"""Probe a trained network: its filters, its feature maps, and where it goes wrong.

(Named ``probe``, not ``inspect``: a module called ``inspect`` shadows the standard library's.)
Everything here reads a ``ConvNet`` by the names of the layer table (conv1, act1, pool1, ...), so
what the Filters page shows lines up with the shapes the Concepts page computes. Pure PyTorch and
NumPy: the page turns these arrays into charts.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from torch import nn

from cnn_core.data import to_float
from cnn_core.model import ConvNet
from cnn_core.model.checkpoint import BUNDLED, DEFAULT_CHECKPOINT, load_checkpoint
from cnn_core.people import Person
from cnn_core.runs import Run, RunStore
from cnn_core.training.loop import evaluate

FEATURE_LAYER_PREFIXES = ("conv", "act", "pool")  # not act_fc: the fully connected part has no maps
OTHER_POOLING = {"max": "avg", "avg": "max"}
BUNDLED_PAIR = tuple(BUNDLED)  # max and average pooling, one recipe: the pair when a run has no twin
SWEEP_GROUP = "sweep-"  # a sweep's trials have its id, "sweep-…", as their group


def conv_layers(model: nn.Module) -> list[str]:
    """Names of the convolution layers, in order (conv1, conv2, ...)."""
    return [name for name, child in model.named_children() if isinstance(child, nn.Conv2d)]


def _is_feature_layer(name: str) -> bool:
    return name.startswith(FEATURE_LAYER_PREFIXES) and not name.startswith("act_fc")


def feature_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """(C, H, W) of every feature layer's output, found by one forward pass of a blank input."""
    config = cast(ConvNet, model).config  # a ConvNet knows its input
    blank = torch.zeros(
        1, config.in_channels, config.input_size, config.input_size, device=next(model.parameters()).device
    )
    return {name: maps.shape for name, maps in feature_maps(model, blank).items()}


def layer(model: nn.Module, name: str) -> nn.Module:
    """A named child of the network; KeyError names the layers there are."""
    children = dict(model.named_children())
    if name not in children:
        raise KeyError(f"no layer {name!r}; the network has {', '.join(children)}")
    return children[name]


@dataclass(frozen=True, eq=False)
class FilterGrid:
    """One conv layer's filters as small images, with one symmetric colour scale for all of them."""

    layer: str
    tiles: np.ndarray  # (out_channels, k, k) float32
    scale: float  # max |weight| over the tiles: colours run from -scale to +scale, 0 in the middle
    view: str  # "channel 2 of 6", "mean over 6 input channels", "the only input channel"


def filter_grid(model: nn.Module, name: str, in_channel: int | None = None) -> FilterGrid:
    """The filters of conv layer ``name``: one tile per output channel.

    A first-layer filter is one k×k image. A deeper filter has one k×k slice per input channel;
    ``in_channel`` picks one slice, ``None`` averages them (the summary a grid can show at once).
    """
    weight = cast(torch.Tensor, layer(model, name).weight).detach().cpu().float().numpy()  # (out, in, k, k)
    n_in = weight.shape[1]
    if n_in == 1:
        tiles, view = weight[:, 0], "the only input channel"
    elif in_channel is None:
        tiles, view = weight.mean(axis=1), f"mean over {n_in} input channels"
    else:
        if not 0 <= in_channel < n_in:
            raise ValueError(f"{name}: input channel {in_channel} out of range 0..{n_in - 1}")
        tiles, view = weight[:, in_channel], f"input channel {in_channel + 1} of {n_in}"
    scale = float(np.abs(tiles).max()) or 1.0
    return FilterGrid(name, np.ascontiguousarray(tiles, dtype=np.float32), scale, view)


@dataclass(frozen=True, eq=False)
class ColourFilters:
    """A first layer's filters of a colour (RGB) input as small colour pictures, each on its own scale."""

    layer: str
    pictures: np.ndarray  # (out_channels, k, k, 3) float in [0, 1]: 0.5 grey is a zero weight
    scales: np.ndarray  # (out_channels,) max |weight| of each filter: its picture runs from −scale to +scale


def colour_filters(model: nn.Module, name: str) -> ColourFilters:
    """Filters of a layer that reads three channels as RGB pictures, each normalised on its own.

    One scale per filter, not per layer: a filter with small weights would otherwise be a flat grey, and it
    is the pattern of colours within a filter (red against green, a blue blob) that shows what it looks for.
    """
    weight = cast(torch.Tensor, layer(model, name).weight).detach().cpu().float().numpy()  # (out, in, k, k)
    if weight.shape[1] != 3:
        raise ValueError(f"{name} reads {weight.shape[1]} channels; colour pictures need 3 (RGB)")
    scales = np.abs(weight).reshape(len(weight), -1).max(axis=1)
    scales = np.where(scales > 0, scales, 1.0)
    pictures = 0.5 + 0.5 * weight / scales[:, None, None, None]
    return ColourFilters(name, np.ascontiguousarray(pictures.transpose(0, 2, 3, 1), dtype=np.float32), scales)


def filter_frame(grid: FilterGrid, columns: int | None = None) -> pd.DataFrame:
    """Long-form rows (filter, x, y, weight) with tiles laid out on a grid with a one-pixel gap.

    One chart with computed positions draws 120 filters far faster than 120 faceted charts.
    """
    n, k, _ = grid.tiles.shape
    columns = columns or min(n, 12)
    idx, ys, xs = np.meshgrid(np.arange(n), np.arange(k), np.arange(k), indexing="ij")
    return pd.DataFrame(
        {
            "filter": idx.ravel() + 1,
            "x": ((idx % columns) * (k + 1) + xs).ravel(),
            "y": ((idx // columns) * (k + 1) + ys).ravel(),
            "weight": grid.tiles.ravel(),
        }
    )


def weight_histogram(model: nn.Module, name: str, bins: int = 40) -> pd.DataFrame:
    """Counts of a layer's weights per bin (columns start, end, count), for a distribution chart."""
    weights = cast(torch.Tensor, layer(model, name).weight).detach().cpu().float().numpy().ravel()
    counts, edges = np.histogram(weights, bins=bins)
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "count": counts})


def filter_change(paths: list[str | Path], name: str) -> pd.DataFrame:
    """How far conv layer ``name``'s filters moved in each epoch: ||W_e − W_{e−1}|| / ||W_e||, from epoch 2 on.

    Epoch 1 has no earlier checkpoint to compare with, so it has no row (a 0 there would read as "did
    not move"). Large early, small late: the filters settle. Read from one run's per-epoch checkpoints.
    """
    return filter_changes(paths, [name]).drop(columns="layer")


def filter_changes(paths: list[str | Path], names: list[str] | None = None) -> pd.DataFrame:
    """``filter_change`` of several conv layers (all by default) from one pass over the checkpoints:
    rows (layer, epoch, relative change)."""
    rows: list[dict[str, Any]] = []
    previous: dict[str, torch.Tensor] = {}
    for epoch, path in enumerate(paths, start=1):
        model = load_checkpoint(path).model
        for name in names or conv_layers(model):
            weight = cast(torch.Tensor, layer(model, name).weight).detach()
            if name in previous:
                change = float((weight - previous[name]).norm() / weight.norm().clamp_min(1e-12))
                rows.append({"layer": name, "epoch": epoch, "relative change": change})
            previous[name] = weight
    return pd.DataFrame(rows, columns=["layer", "epoch", "relative change"])


def as_batch(image: np.ndarray | torch.Tensor, in_channels: int = 1) -> torch.Tensor:
    """A (28, 28) float image in [0, 1] (or an N×C×H×W tensor) as the model's N×C×H×W input."""
    x = torch.as_tensor(image, dtype=torch.float32)
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None]
    if x.shape[1] != in_channels:  # a grey digit shown to an RGB model: repeat it on every channel
        x = x.repeat(1, in_channels, 1, 1)
    return x


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor) -> OrderedDict[str, np.ndarray]:
    """Every conv, activation and pooling output for one input, in network order, named like the layer table.

    Forward hooks catch the outputs in a single pass. They go on a copy (cheap for LeNet-5): the
    page's model is shared by every session, and a hook on it would also catch another session's
    forward pass. Each map is (C, H, W), for the first input of the batch.
    """
    model = copy.deepcopy(model)
    caught: OrderedDict[str, np.ndarray] = OrderedDict()
    hooks = []
    for name, child in model.named_children():
        if _is_feature_layer(name):
            hooks.append(
                child.register_forward_hook(
                    lambda _m, _i, out, name=name: caught.__setitem__(name, out[0].detach().cpu().float().numpy())
                )
            )
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return caught


def misclassified(
    labels: np.ndarray | torch.Tensor,
    predictions: np.ndarray | torch.Tensor,
    true: int | None = None,
    predicted: int | None = None,
) -> np.ndarray:
    """Indices of wrong answers, optionally only those of one confusion-matrix cell."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    wrong = labels != predictions
    if true is not None:
        wrong &= labels == true
    if predicted is not None:
        wrong &= predictions == predicted
    return np.flatnonzero(wrong)


def split_predictions(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, np.ndarray]:
    """Accuracy and predicted labels on a uint8 test split, by ``train.evaluate`` (which leaves the
    model's train/eval mode as it found it, so a page's shared model can be passed as it is)."""
    _, accuracy, predictions, _ = evaluate(model, images, labels)
    return accuracy, predictions.numpy()


def digit_at(images: torch.Tensor, index: int) -> np.ndarray:
    """One test digit as a float (H, W) image in [0, 1] (first channel)."""
    return to_float(images[index : index + 1])[0, 0].numpy()


def model_choices(store: RunStore | None, visible_to: Person | None = None) -> dict[str, dict[str, Any]]:
    """Models a page can offer: the bundled checkpoints, finished runs that kept a checkpoint, and each sweep
    as one entry whose trials (best first) are under ``"trials"``, so twelve trials do not flood the picker.

    ``store`` None (a page whose run store is broken) offers the bundled checkpoints alone; ``visible_to``: only
    the runs and sweeps that person may see.

    label -> {"source": name or path for ``load_checkpoint``, "run_id": id or None, "dataset": name,
    "data_dir": folder or None, "accuracy": test accuracy or None} (the data it was trained on); a sweep's entry
    is its best trial's, plus "trials": label -> such a choice. The default checkpoint comes first.
    """
    choices = {
        name: {"source": name, "run_id": None, "dataset": "mnist", "data_dir": None, "accuracy": None}
        for name in sorted(BUNDLED, key=lambda n: n != DEFAULT_CHECKPOINT)
    }
    runs = [r for r in store.list(visible_to=visible_to) if _has_weights(r)] if store is not None else []
    sweeps: dict[str, list[Run]] = {}
    for run in runs:
        if run.group_id and run.group_id.startswith(SWEEP_GROUP):
            sweeps.setdefault(run.group_id, []).append(run)
        else:
            choices[run_label(run)] = _choice(run)
    names = {s.id: s.label for s in store.sweeps.list(visible_to=visible_to)} if sweeps and store is not None else {}
    for sweep_id, trials in sweeps.items():
        ranked = sorted(trials, key=_accuracy, reverse=True)  # best first; ties keep the newest first
        label = f"sweep: {names.get(sweep_id, sweep_id)} ({len(trials)} trials)"
        choices[label] = _choice(ranked[0]) | {"trials": {run_label(t): _choice(t) for t in ranked}}
    return choices


def _choice(run: Run) -> dict[str, Any]:
    return {
        "source": run.checkpoint,
        "run_id": run.id,
        "dataset": run.dataset,
        "data_dir": run.data_dir,
        "accuracy": run.test_accuracy,
    }


def _accuracy(run: Run) -> float:
    return run.test_accuracy if run.test_accuracy is not None else -1.0


def run_label(run: Run) -> str:
    """How a page names a run in its model picker."""
    return f"run: {run.label} ({run.id})"


def default_model(choices: dict[str, dict[str, Any]]) -> str:
    """The label a model picker opens on: the run (or the sweep holding the trial) with the best test accuracy
    (the newest of equals), or the bundled default when there is none. Not simply the newest: that is often a
    one-epoch trial of a sweep."""
    runs = [(label, c) for label, c in choices.items() if c["run_id"]]
    if not runs:
        return next(iter(choices))
    return max(runs, key=lambda item: item[1]["accuracy"] if item[1]["accuracy"] is not None else -1.0)[0]


def _has_weights(run: Run) -> bool:
    """Runs whose weights are worth looking at: finished (stopped and interrupted too) with a checkpoint kept."""
    return run.finished and bool(run.checkpoint) and Path(cast(str, run.checkpoint)).is_file()


def pooling_twin(runs: list[Run], run_id: str) -> Run | None:
    """The run trained like ``run_id`` but with the other pooling: same comparison group, same seed,
    max ↔ avg, finished with a checkpoint. None when there is none (or the run has no such pooling)."""
    run = next((r for r in runs if r.id == run_id), None)
    other = OTHER_POOLING.get(run.pooling) if run is not None else None
    if run is None or other is None or run.group_id is None:
        return None
    return next(
        (
            r
            for r in runs  # newest first: a re-run of the comparison wins
            if r.id != run.id
            and r.group_id == run.group_id
            and r.seed == run.seed
            and r.pooling == other
            and _has_weights(r)
        ),
        None,
    )


def pooling_checkpoints(
    store: RunStore | None, run_id: str | None, epoch: int | None = None, visible_to: Person | None = None
) -> dict[str, str]:
    """Max and average pooling to show side by side (label -> source for ``load_checkpoint``, max first):
    the chosen run and its pooling twin when it has one — both after ``epoch`` when each kept that epoch's
    checkpoint, else their final weights — and the bundled pair otherwise."""
    runs = store.list(visible_to=visible_to) if store is not None and run_id is not None else []
    run = next((r for r in runs if r.id == run_id), None)
    twin = pooling_twin(runs, run_id) if run_id is not None else None
    if run is None or twin is None or store is None:  # store and run_id are set when runs is not empty
        return {name: name for name in BUNDLED_PAIR}
    pair = sorted((run, twin), key=lambda r: r.pooling != "max")
    saved = [store.epoch_checkpoints(r.id) for r in pair]
    if epoch is not None and all(len(paths) >= epoch for paths in saved):
        return {
            f"{r.label} ({r.pooling}, epoch {epoch})": str(paths[epoch - 1])
            for r, paths in zip(pair, saved, strict=True)
        }
    # Both have weights: the twin is checked, the chosen run came from ``model_choices``.
    return {f"{r.label} ({r.pooling})": cast(str, r.checkpoint) for r in pair}
