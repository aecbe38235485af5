"""The representation a network learns: the test set's penultimate-layer features, projected to 2-D.

The last hidden layer is what the final linear layer separates into classes, so its features show whether
the network has pulled the classes apart. They are projected onto their two principal components
(``torch.pca_lowrank``), per saved epoch: played back, the classes can be seen separating as training goes.
``separation`` puts a number on it (between-class spread over within-class spread in the projection).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from cnn_core.data import to_float

MAX_POINTS = 2000  # dots a scatter chart still draws and redraws smoothly in a browser
PCA_SEED = 0  # pca_lowrank projects onto random vectors first: a fixed seed gives the same picture every time


def last_linear(model: nn.Module) -> nn.Linear:
    """The output layer (its input is the penultimate layer's features)."""
    return [child for child in model.children() if isinstance(child, nn.Linear)][-1]


@torch.no_grad()
def penultimate_features(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, D) features that the output layer reads, for uint8 ``images`` (N, C, H, W).

    The hook goes on a copy: the page's model is shared by every session (see ``probe.feature_maps``)."""
    model = copy.deepcopy(model).eval()
    caught: list[torch.Tensor] = []
    hook = last_linear(model).register_forward_hook(lambda _m, inputs, _out: caught.append(inputs[0].detach()))
    try:
        for start in range(0, len(images), batch_size):
            model(to_float(images[start : start + batch_size]))
    finally:
        hook.remove()
    return torch.cat(caught).float()


def project(features: torch.Tensor, previous: np.ndarray | None = None) -> np.ndarray:
    """(N, 2) coordinates on the two principal components, scaled to unit spread.

    A component's sign is arbitrary; with ``previous`` (the epoch before, same points) each axis is flipped to
    agree with it, so a played-back cloud does not jump to its mirror image between epochs."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PCA_SEED)
        _, _, v = torch.pca_lowrank(features, q=min(2, *features.shape), center=True)
    coords = ((features - features.mean(0)) @ v[:, :2]).numpy()
    if coords.shape[1] < 2:  # a single feature: nothing to spread the second axis with
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    coords = coords / max(float(coords.std()), 1e-12)
    if previous is not None:
        for axis in range(2):
            if float(np.dot(coords[:, axis], previous[:, axis])) < 0:
                coords[:, axis] *= -1
    return coords.astype(np.float32)


def separation(coords: np.ndarray, labels: np.ndarray) -> float:
    """Between-class over within-class spread (traces of the scatter matrices): 0 when the classes lie on
    top of each other, large when each class is a tight cluster away from the others. Scale-free."""
    labels = np.asarray(labels)
    centre = coords.mean(0)
    between = within = 0.0
    for cls in np.unique(labels):
        members = coords[labels == cls]
        middle = members.mean(0)
        between += len(members) * float(((middle - centre) ** 2).sum())
        within += float(((members - middle) ** 2).sum())
    return between / max(within, 1e-12)


def sample(count: int, limit: int = MAX_POINTS, seed: int = 0) -> np.ndarray:
    """Indices of at most ``limit`` of ``count`` test images, spread at random, in test-set order."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def frames(
    models: Sequence[tuple[int, nn.Module]],
    images: torch.Tensor,
    labels: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (epoch, model): every sampled test image's 2-D position, and the classes' separation.

    Returns (points: epoch, index, x, y, label; scores: epoch, separation)."""
    picked = sample(len(images))
    images, labels = images[picked], np.asarray(labels)[picked]
    points, scores, previous = [], [], None
    for done, (epoch, model) in enumerate(models, start=1):
        coords = project(penultimate_features(model, images), previous)
        previous = coords
        points.append(
            pd.DataFrame({"epoch": epoch, "index": picked, "x": coords[:, 0], "y": coords[:, 1], "label": labels})
        )
        scores.append({"epoch": epoch, "separation": separation(coords, labels)})
        if progress is not None:
            progress(done, len(models))
    return pd.concat(points, ignore_index=True), pd.DataFrame(scores)
