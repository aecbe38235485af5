"""Charts over the whole test set and a whole run: the embedding, class separation, the invariance
curves, and the clickable digit of Predict first."""

from __future__ import annotations

from typing import cast

import altair as alt
import numpy as np
import pandas as pd

from cnn_core.charts.colours import POOLING_COLORS


def embedding_chart(points: pd.DataFrame, classes: list[str], title: str = "") -> alt.Chart:
    """Test images as dots at their 2-D projection (``embedding`` rows: index, x, y, class), one colour per
    class. A click selects one dot (selection ``point``, field ``index``): the page shows that image."""
    pick = alt.selection_point(name="point", fields=["index"], on="click", clear="dblclick")
    return cast(
        alt.Chart,
        alt.Chart(points, title=title)
        .mark_circle(size=28)
        .encode(
            x=alt.X("x:Q", title="component 1", axis=alt.Axis(labels=False, ticks=False)),
            y=alt.Y("y:Q", title="component 2", axis=alt.Axis(labels=False, ticks=False)),
            color=alt.Color(
                "class:N", sort=classes, scale=alt.Scale(scheme="category10"), legend=alt.Legend(columns=2)
            ),
            opacity=alt.condition(pick, alt.value(0.8), alt.value(0.15)),
            tooltip=[alt.Tooltip("index:Q", title="test image"), alt.Tooltip("class:N")],
        )
        .add_params(pick)
        .properties(height=480),
    )


def separation_chart(scores: pd.DataFrame, epoch: int | None = None) -> alt.LayerChart:
    """How far apart the classes sit in the projection, per epoch (rows: epoch, separation)."""
    line = (
        alt.Chart(scores)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(format="d", tickMinStep=1)),
            y=alt.Y("separation:Q", title="between / within class spread"),
            tooltip=[alt.Tooltip("epoch:Q"), alt.Tooltip("separation:Q", format=".2f")],
        )
    )
    layers = [line]
    if epoch is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"epoch": [epoch]})).mark_rule(color="#888", strokeWidth=2).encode(x="epoch:Q")
        )
    return cast(alt.LayerChart, alt.layer(*layers).properties(height=160))


INVARIANCE_AXES = {
    "shift": "shift (pixels)",
    "rotation": "rotation (degrees)",
    "scale": "scale (× size)",
}


def _run_colours(runs: pd.Series) -> alt.Scale | alt.UndefinedType:
    """Max pooling red and average pooling blue, as on the rest of the page, when every line is one of them
    ("max", "avg pooling", ...); the default palette otherwise."""
    names = list(dict.fromkeys(runs))
    poolings = [next((p for p in POOLING_COLORS.domain if name.startswith(p)), None) for name in names]
    if None in poolings or len(set(poolings)) < len(poolings):
        return alt.Undefined
    colours = dict(zip(POOLING_COLORS.domain, POOLING_COLORS.range, strict=True))
    return alt.Scale(domain=names, range=[colours[p] for p in poolings])


def invariance_charts(curves: pd.DataFrame) -> list[alt.LayerChart]:
    """Test accuracy against shift, rotation and scale (``invariance.curves`` rows: run, kind, amount, mean,
    std, seeds), one line per run with a band of ± one standard deviation over its seeds."""
    curves = curves.assign(low=curves["mean"] - curves["std"], high=curves["mean"] + curves["std"])
    legend = alt.Legend(orient="bottom", direction="horizontal", title=None)
    charts: list[alt.LayerChart] = []
    for kind, title in INVARIANCE_AXES.items():
        data = curves[curves["kind"] == kind]
        # Ticks on the measured amounts only (no "0.5 px"); accuracy from the lowest point up, not from 0, so a
        # drop of two points is visible.
        x = alt.X("amount:Q", title=title, axis=alt.Axis(values=sorted(data["amount"].unique().tolist())))
        base = alt.Chart(data).encode(x=x, color=alt.Color("run:N", legend=legend, scale=_run_colours(curves["run"])))
        band = base.mark_area(opacity=0.2).encode(
            y=alt.Y("low:Q"), y2=alt.Y2("high:Q"), color=alt.Color("run:N", legend=None)
        )
        line = base.mark_line(point=True).encode(
            y=alt.Y("mean:Q", title="test accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(zero=False)),
            tooltip=[
                alt.Tooltip("run:N"),
                alt.Tooltip("amount:Q", title=title),
                alt.Tooltip("mean:Q", format=".2%", title="accuracy"),
                alt.Tooltip("std:Q", format=".2%"),
                alt.Tooltip("seeds:Q"),
            ],
        )
        charts.append(cast(alt.LayerChart, alt.layer(band, line).properties(height=240, title=kind, width="container")))
    return charts


def region_chart(image: np.ndarray, regions: int, chosen: str | None = None) -> alt.LayerChart:
    """A grey (H, W) image as pixels that can be clicked: a click selects one of ``regions`` × ``regions``
    blocks (selection ``region``, field ``region`` named "row,col"); the chosen block is outlined."""
    height, width = image.shape
    rows, cols = np.mgrid[0:height, 0:width]
    block = (rows * regions // height).ravel(), (cols * regions // width).ravel()
    frame = pd.DataFrame(
        {
            "x": cols.ravel(),
            "y": rows.ravel(),
            "x_end": cols.ravel() + 1,
            "y_end": rows.ravel() + 1,
            "ink": image.ravel(),
            "region": [f"{r},{c}" for r, c in zip(*block, strict=True)],
        }
    )
    pick = alt.selection_point(name="region", fields=["region"], on="click")
    # Pixels as rects between whole numbers on continuous axes, as filter_chart draws them: bands of an
    # ordinal axis are a fraction of a screen pixel apart here and leave seams between the rows.
    encoding = {
        "x": alt.X("x:Q", axis=None, scale=alt.Scale(domain=[0, width], nice=False)),
        "x2": alt.X2("x_end:Q"),
        "y": alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[0, height], nice=False, reverse=True)),
        "y2": alt.Y2("y_end:Q"),
    }
    greys = alt.Scale(scheme="greys", reverse=True, domain=[0, 1])
    # Each pixel's outline in its own colour closes the hairline seams a canvas leaves between neighbours.
    ink, edge = alt.Color("ink:Q", scale=greys, legend=None), alt.Stroke("ink:Q", scale=greys, legend=None)
    pixels = alt.Chart(frame).mark_rect(strokeWidth=1).encode(color=ink, stroke=edge, **encoding).add_params(pick)
    layers = [pixels]
    if chosen is not None:
        marked = frame[frame["region"] == chosen]
        layers.append(alt.Chart(marked).mark_rect(color="#ffb000", opacity=0.45).encode(**encoding))
    return cast(alt.LayerChart, alt.layer(*layers).properties(width=280, height=280))
