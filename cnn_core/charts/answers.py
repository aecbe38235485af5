"""Charts of one answer: class probabilities, deletion curves and the playground's numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import altair as alt
import numpy as np
import pandas as pd

from cnn_core.charts.colours import diverging


def probability_chart(probs: np.ndarray, classes: list[str]) -> alt.Chart:
    """One bar per class on a 0-100 % axis; the top class (or tied top classes) in its own colour."""
    bars = pd.DataFrame({"class": classes, "probability": probs, "top": probs == probs.max()})
    return cast(
        alt.Chart,
        alt.Chart(bars)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=None),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            color=alt.Color("top:N", legend=None),
            tooltip=[alt.Tooltip("class:N"), alt.Tooltip("probability:Q", format=".2%")],
        )
        .properties(height=220),
    )


def deletion_chart(curves: pd.DataFrame) -> alt.Chart:
    """Deletion curves (``faithfulness.deletion_frame`` rows), one line per method; the random order,
    the curve to beat, is dashed."""
    dashed = alt.condition("datum.method == 'random order'", alt.value([4, 4]), alt.value([1, 0]))
    return cast(
        alt.Chart,
        alt.Chart(curves)
        .mark_line()
        .encode(
            x=alt.X("fraction removed:Q", axis=alt.Axis(format="%")),
            y=alt.Y("probability:Q"),
            color=alt.Color("method:N"),
            strokeDash=dashed,
        )
        .properties(height=260),
    )


def values_chart(panels: Mapping[str, np.ndarray]) -> alt.FacetChart:
    """(C, k, k) arrays side by side, one panel per title, as coloured cells with their numbers.

    Colour channels are stacked R, G, B from the top. Each panel is coloured on its own symmetric scale (a
    value over the panel's largest magnitude), so weights of ±4 and pixels in [0, 1] both show their pattern.
    One chart with panels rather than a chart per array: the browser builds one Vega view and Streamlit
    validates one spec (half the time of three, paid on every move of a playground control).
    """
    frames = []
    for title, values in panels.items():
        channels, height, width = values.shape
        names = [""] if channels == 1 else ["R", "G", "B"][:channels]
        c, i, j = np.meshgrid(np.arange(channels), np.arange(height), np.arange(width), indexing="ij")
        flat = values.astype(float).ravel()
        shade = flat / max(float(np.abs(flat).max()), 1e-9)
        rows = [f"{names[a]}{b}" for a, b in zip(c.ravel(), i.ravel(), strict=True)]
        frames.append(pd.DataFrame({"panel": title, "row": rows, "column": j.ravel(), "value": flat, "shade": shade}))
    frame = pd.concat(frames, ignore_index=True)
    x = alt.X("column:O", title=None, axis=alt.Axis(labelAngle=0))
    y = alt.Y("row:O", sort=list(dict.fromkeys(frame["row"])), title=None)
    cells = alt.Chart(mark="rect").encode(x=x, y=y, color=alt.Color("shade:Q", legend=None, scale=diverging(1.0)))
    text = alt.Text("value:Q", format=".3~g")
    # Numbers readable on dark cells; an expression because alt.condition costs a schema validation (bench_ui).
    ink = alt.ExprRef(expr="abs(datum.shade) > 0.6 ? 'white' : 'black'")
    numbers = alt.Chart(mark=alt.MarkDef(type="text", fontSize=12, color=ink)).encode(x=x, y=y, text=text)
    layer = alt.LayerChart(layer=[cells, numbers], width=alt.Step(46), height=alt.Step(28))
    header = alt.Header(labelFontSize=13, labelFontWeight="bold", labelOrient="top")
    panel = alt.Facet("panel:N", sort=list(panels), title=None, header=header)
    return alt.FacetChart(data=frame, spec=layer, facet=panel, columns=len(panels))
