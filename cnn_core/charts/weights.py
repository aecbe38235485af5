"""Charts of a network's weights: filters, their distribution, and how far they moved per epoch."""

from __future__ import annotations

from typing import cast

import altair as alt
import numpy as np
import pandas as pd

from cnn_core.charts.colours import diverging


def filter_chart(frame: pd.DataFrame, scale: float) -> alt.Chart:
    """A layer's filters (``probe.filter_frame`` rows) as one rect per weight on continuous axes, so the
    empty gaps between tiles stay visible; one colour scale from −scale to +scale for the whole layer.

    Channels are written as objects (``alt.X2``, ``alt.Tooltip``), not strings, here and in the charts
    below that a page redraws on every slider step: Altair resolves a string shorthand against its schema
    each time, which costs more than the chart itself (benchmarks/bench_ui.py); the spec is the same."""
    width, height = int(frame["x"].max()) + 1, int(frame["y"].max()) + 1
    cell = int(np.clip(120 // height, 6, 20))  # px per weight: a row of 6 filters is not a thin strip
    legend = alt.Legend(gradientLength=max(40, height * cell - 30))
    return cast(
        alt.Chart,
        alt.Chart(frame)
        .mark_rect()
        .transform_calculate(x_end="datum.x + 1", y_end="datum.y + 1")
        .encode(
            x=alt.X("x:Q", scale=alt.Scale(domain=[0, width], nice=False), axis=None),
            x2=alt.X2("x_end:Q"),
            y=alt.Y("y:Q", scale=alt.Scale(domain=[0, height], nice=False, reverse=True), axis=None),
            y2=alt.Y2("y_end:Q"),
            color=alt.Color("weight:Q", scale=diverging(scale), legend=legend),
            tooltip=[alt.Tooltip("filter:Q"), alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(width=width * cell, height=height * cell),
    )


def weight_histogram_chart(hist: pd.DataFrame, layer: str) -> alt.Chart:
    """A layer's weight distribution from ``probe.weight_histogram`` bins (start, end, count)."""
    return cast(
        alt.Chart,
        alt.Chart(hist)
        .mark_bar()
        .encode(x=alt.X("start:Q", title=f"{layer} weight"), x2=alt.X2("end:Q"), y=alt.Y("count:Q"), y2=alt.Y2Datum(0))
        .properties(height=180),
    )


def filter_change_chart(change: pd.DataFrame) -> alt.Chart:
    """How far the filters moved in each epoch (``probe.filter_change``, from epoch 2 on: epoch 1 has
    nothing before it), as a percentage of their size."""
    return cast(
        alt.Chart,
        alt.Chart(change)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:O", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("relative change:Q", title="moved since the epoch before", axis=alt.Axis(format="%")),
            tooltip=[alt.Tooltip("epoch:O"), alt.Tooltip("relative change:Q", format=".1%")],
        )
        .properties(height=180),
    )


def layer_change_chart(changes: pd.DataFrame, epoch: int | None = None) -> alt.LayerChart:
    """How far each conv layer's weights moved in each epoch (``probe.filter_changes`` rows: layer, epoch,
    relative change), one line per layer; a grey rule marks the epoch on show."""
    lines = (
        alt.Chart(changes)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(format="d", tickMinStep=1)),
            y=alt.Y("relative change:Q", title="moved since the epoch before", axis=alt.Axis(format="%")),
            color=alt.Color("layer:N", legend=alt.Legend(orient="bottom", direction="horizontal")),
            tooltip=[alt.Tooltip("layer:N"), alt.Tooltip("epoch:Q"), alt.Tooltip("relative change:Q", format=".1%")],
        )
    )
    layers = [lines]
    if epoch is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"epoch": [epoch]})).mark_rule(color="#888", strokeWidth=2).encode(x="epoch:Q")
        )
    return cast(alt.LayerChart, alt.layer(*layers).properties(height=180))
