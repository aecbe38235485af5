"""Pooling's invariance, measured: test accuracy as the test images are shifted, rotated and scaled.

The article says pooling makes a network tolerant to small shifts. ``curves`` measures it: the same test
split, moved by 0–4 pixels, rotated by 0–30° and scaled by 0.7–1.3, for each run (mean ± std over seeds).
``perturb`` applies the same moves — and a thicker or thinner stroke, and noise — to one image, for the
Explain page's sliders. Every move is one affine resampling (``F.grid_sample``), as the trainer's
augmentation does, so amount 0 is the test split itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from statistics import mean, stdev
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.data import to_float

AMOUNTS = {  # kind -> the amounts measured; the first is "unchanged"
    "shift": (0, 1, 2, 3, 4),  # pixels, each in four directions (right, left, down, up) averaged
    "rotation": (0, 5, 10, 15, 20, 25, 30),  # degrees, clockwise and anticlockwise averaged
    "scale": (1.0, 0.9, 0.8, 0.7, 1.1, 1.2, 1.3),  # × size, about the image's centre
}
MAX_IMAGES = 2000  # of the test split: ±1 point at 95 % is enough to see a curve, and 37 passes stay quick


def transform(
    x: torch.Tensor, shift: tuple[float, float] = (0.0, 0.0), angle: float = 0.0, scale: float = 1.0
) -> torch.Tensor:
    """Float images (N, C, H, W) moved right/down by ``shift`` pixels, turned ``angle`` degrees clockwise and
    enlarged ``scale`` times about their centre; what comes in from outside is black."""
    n, _, height, width = x.shape
    a = math.radians(angle)
    # grid_sample asks, for each output pixel, where to read in the input: the inverse of the move.
    inverse = torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]], dtype=x.dtype) / scale
    moved = torch.tensor([2 * shift[0] / width, 2 * shift[1] / height], dtype=x.dtype)
    theta = torch.cat([inverse, (-inverse @ moved)[:, None]], dim=1).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def variants(kind: str, amount: float) -> list[dict[str, Any]]:
    """The moves averaged for one point of a curve: a shift in four directions, a rotation both ways."""
    if kind == "shift":
        if amount == 0:
            return [{"shift": (0.0, 0.0)}]
        return [{"shift": s} for s in ((amount, 0), (-amount, 0), (0, amount), (0, -amount))]
    if kind == "rotation":
        return [{"angle": amount}] if amount == 0 else [{"angle": amount}, {"angle": -amount}]
    if kind == "scale":
        return [{"scale": amount}]
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(AMOUNTS)}")


@torch.no_grad()
def accuracy_under(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, move: dict[str, Any], batch_size: int = 1000
) -> float:
    """Accuracy on uint8 ``images`` after ``move`` (keyword arguments of ``transform``). The model's
    train/eval mode is restored afterwards: a shared model is not changed."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        x = transform(to_float(images[start : start + batch_size]), **move)
        correct += int((model(x).argmax(1) == labels[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(labels), 1)


def curve(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, on_pass: Callable[[], None] | None = None
) -> pd.DataFrame:
    """Rows (kind, amount, accuracy) for one model over every amount of every kind, sorted by amount."""
    rows = []
    for kind, amounts in AMOUNTS.items():
        for amount in amounts:
            accuracies = []
            for move in variants(kind, amount):
                accuracies.append(accuracy_under(model, images, labels, move))
                if on_pass is not None:
                    on_pass()
            rows.append({"kind": kind, "amount": float(amount), "accuracy": mean(accuracies)})
    return pd.DataFrame(rows).sort_values(["kind", "amount"], ignore_index=True)


def passes_per_model() -> int:
    return sum(len(variants(kind, amount)) for kind, amounts in AMOUNTS.items() for amount in amounts)


def curves(
    runs: Mapping[str, Sequence[nn.Module]],
    images: torch.Tensor,
    labels: torch.Tensor,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Rows (run, kind, amount, mean, std, seeds): each run's curve, mean ± std over its models (its seeds).

    At most ``MAX_IMAGES`` test images are used (the first ones; a test split is in no particular order
    of difficulty)."""
    images, labels = images[:MAX_IMAGES], labels[:MAX_IMAGES]
    total, done = passes_per_model() * sum(len(models) for models in runs.values()), 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    frames = []
    for name, models in runs.items():
        per_seed = pd.concat([curve(m, images, labels, tick) for m in models], ignore_index=True)
        grouped = per_seed.groupby(["kind", "amount"], sort=True)["accuracy"]
        frame = grouped.agg(mean="mean", seeds="size").reset_index()
        frame["std"] = grouped.agg(lambda a: stdev(a) if len(a) > 1 else 0.0).to_numpy()
        frames.append(frame.assign(run=name))
    columns = ["run", "kind", "amount", "mean", "std", "seeds"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def perturb(
    image: np.ndarray,
    shift: tuple[float, float] = (0.0, 0.0),
    angle: float = 0.0,
    scale: float = 1.0,
    thickness: int = 0,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """One (H, W) or (C, H, W) image in [0, 1], moved like ``transform``; strokes made ``thickness`` pixels
    thicker (negative: thinner, by grey-scale dilation or erosion with a 3×3 square); then Gaussian noise of
    standard deviation ``noise`` (the same noise for the same ``seed``), clipped back to [0, 1]."""
    x = torch.as_tensor(image, dtype=torch.float32)
    grey = x.ndim == 2
    x = x[None, None] if grey else x[None]
    for _ in range(abs(int(thickness))):
        x = F.max_pool2d(x, 3, 1, 1) if thickness > 0 else -F.max_pool2d(-x, 3, 1, 1)
    x = transform(x, shift, angle, scale)
    if noise > 0:
        generator = torch.Generator().manual_seed(seed)
        x = x + noise * torch.randn(x.shape, generator=generator)
    x = x.clamp(0, 1)[0]
    return (x[0] if grey else x).numpy()


def summary(curves: pd.DataFrame) -> str:
    """One sentence per kind: each run's accuracy unchanged and at the largest move, e.g. 'Shifted by 4 px:
    max 96.1 % (−2.4 points from 98.5 %), avg …'."""
    units = {"shift": " px", "rotation": "°", "scale": "×"}
    sentences = []
    for kind, amounts in AMOUNTS.items():
        rows = curves[curves["kind"] == kind]
        if rows.empty:
            continue
        far = max(amounts, key=lambda a: abs(a - amounts[0]))
        parts = []
        for run, group in rows.groupby("run", sort=False):
            start = float(group.loc[group["amount"] == amounts[0], "mean"].iloc[0])
            end = float(group.loc[group["amount"] == far, "mean"].iloc[0])
            parts.append(f"{run} {end:.1%} ({100 * (end - start):+.1f} points from {start:.1%})")
        sentences.append(f"{kind.capitalize()} {far:g}{units[kind]}: " + ", ".join(parts) + ".")
    return " ".join(sentences)
