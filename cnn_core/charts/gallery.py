"""What a dataset holds, to look at rather than read: images per class as a bar chart, a row of samples each."""

from __future__ import annotations

from typing import cast

import altair as alt
import numpy as np
import numpy.typing as npt
import pandas as pd

from cnn_core import heatmap

SAMPLES = 8  # images shown per class
TILE = 48  # pixels per sample on screen: a 28×28 digit and a 64×64 photo both stay legible


def class_counts_chart(classes: list[str], train: list[int], test: list[int]) -> alt.Chart:
    """One horizontal bar per class, training and test images stacked, so a lopsided class stands out."""
    frame = pd.DataFrame(
        [{"class": c, "split": "train", "images": n} for c, n in zip(classes, train, strict=True)]
        + [{"class": c, "split": "test", "images": n} for c, n in zip(classes, test, strict=True) if n]
    )
    return cast(
        alt.Chart,
        alt.Chart(frame, title="images per class")
        .mark_bar()
        .encode(
            y=alt.Y("class:N", sort=classes, title=None),
            x=alt.X("sum(images):Q", title="images"),
            color=alt.Color("split:N", scale=alt.Scale(domain=["train", "test"], range=["#4c78a8", "#f58518"])),
            tooltip=["class:N", "split:N", "images:Q"],
        )
        .properties(height=max(80, 22 * len(classes)), width="container"),
    )


def class_samples(
    images: np.ndarray, labels: np.ndarray, classes: list[str], per_class: int = SAMPLES
) -> dict[str, npt.NDArray[np.uint8]]:
    """For each class, its first ``per_class`` images side by side as one RGB strip (uint8, H × W × 3)."""
    strips: dict[str, npt.NDArray[np.uint8]] = {}
    for index, name in enumerate(classes):
        picked = np.flatnonzero(labels == index)[:per_class]
        tiles = [heatmap.thumbnail(heatmap.grey_rgb(images[i], 1), side=TILE, fill=255) for i in picked]
        if tiles:
            gap = np.full((TILE, 4, 3), 255, np.uint8)
            strips[name] = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
    return strips
