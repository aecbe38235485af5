"""Altair charts shared by the pages: training curves, confusion matrices, per-seed accuracy.

Charts are built here (no Streamlit) so pages stay views and the charts can be tested.
"""

from __future__ import annotations

import io

import altair as alt
import numpy as np
import pandas as pd

from cnn_core.compare import smooth

POOLING_COLORS = alt.Scale(domain=["max", "avg", "none"], range=["#d62728", "#1f77b4", "#7f7f7f"])


def curves_chart(long: pd.DataFrame, color: str = "name", smoothing: float = 0.0, x: str = "epoch") -> alt.VConcatChart:
    """Loss and accuracy panels (dashed = validation); with smoothing, the smoothed line is drawn over the
    faint raw one, never instead of it."""
    long = long.sort_values(["run", "metric", x]).copy()
    long["smoothed"] = (
        long.groupby(["run", "metric"])["value"].transform(lambda v: smooth(v.to_numpy(), smoothing))
        if not long.empty
        else []
    )
    long["split"] = np.where(long["metric"].astype(str).str.startswith("val_"), "validation", "train")
    panels = []
    for panel in ("loss", "accuracy"):
        data = long[long["metric"].astype(str).str.endswith(panel)]
        base = alt.Chart(data).encode(
            x=alt.X(f"{x}:Q", title=x, axis=alt.Axis(format="d", tickMinStep=1)),
            color=alt.Color(f"{color}:N", scale=POOLING_COLORS if color == "pooling" else alt.Undefined),
            strokeDash=alt.StrokeDash("split:N", title="split"),
            detail="run:N",
            tooltip=["name:N", f"{x}:Q", "metric:N", alt.Tooltip("value:Q", format=".4f")],
        )
        raw = base.mark_line(opacity=0.25 if smoothing > 0 else 1.0, point=len(data) < 60 and smoothing == 0)
        layers = [raw.encode(y=alt.Y("value:Q", title=panel, scale=alt.Scale(zero=False)))]
        if smoothing > 0:
            layers.append(base.mark_line().encode(y=alt.Y("smoothed:Q", title=panel, scale=alt.Scale(zero=False))))
        panels.append(alt.layer(*layers).properties(height=220, title=panel))
    return alt.vconcat(*panels).resolve_scale(color="shared")


def confusion_chart(counts: np.ndarray, classes: list[str], title: str = "", select: bool = False) -> alt.Chart:
    """A heatmap of counts[true, predicted] with the numbers written in the cells."""
    n = len(classes)
    frame = pd.DataFrame(
        [
            {
                "true": classes[i],
                "predicted": classes[j],
                "count": int(counts[i, j]),
                "error": int(counts[i, j]) if i != j else 0,
            }
            for i in range(n)
            for j in range(n)
        ]
    )
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("predicted:N", sort=classes, axis=alt.Axis(labelAngle=0, labelOverlap=False)),
        y=alt.Y("true:N", sort=classes, axis=alt.Axis(labelOverlap=False)),
        tooltip=["true:N", "predicted:N", "count:Q"],
    )
    cells = base.mark_rect().encode(color=alt.Color("error:Q", scale=alt.Scale(scheme="orangered"), legend=None))
    if select:
        cells = cells.add_params(alt.selection_point(name="cell", fields=["true", "predicted"]))
    text = base.mark_text(fontSize=10).encode(text="count:Q")
    return (cells + text).properties(width=300, height=300)


def seed_points_chart(runs: pd.DataFrame, summary: pd.DataFrame) -> alt.LayerChart:
    """Final test accuracy per seed (points) with the mean ± std per pooling."""
    summary = summary.assign(low=summary["mean"] - summary["std"], high=summary["mean"] + summary["std"])
    points = (
        alt.Chart(runs)
        .mark_circle(size=80, opacity=0.7)
        .encode(
            x=alt.X("pooling:N", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("test_accuracy:Q", title="test accuracy", scale=alt.Scale(zero=False), axis=alt.Axis(format="%")),
            color=alt.Color("pooling:N", scale=POOLING_COLORS),
            tooltip=["pooling", "seed", alt.Tooltip("test_accuracy:Q", format=".4f")],
        )
    )
    bars = (
        alt.Chart(summary)
        .mark_errorbar(thickness=2)
        .encode(x="pooling:N", y=alt.Y("low:Q", title="test accuracy"), y2="high:Q")
    )
    means = alt.Chart(summary).mark_tick(size=30, thickness=2, color="black").encode(x="pooling:N", y="mean:Q")
    return (points + bars + means).properties(height=260, title="test accuracy per seed, mean ± std")


def per_class_chart(frame: pd.DataFrame, value: str) -> alt.Chart:
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=None),
            y=alt.Y(f"{value}:Q"),
            color=alt.condition(alt.datum[value] > 0, alt.value("#1f77b4"), alt.value("#ff7f0e")),
            tooltip=["class", alt.Tooltip(f"{value}:Q", format=".2f")],
        )
        .properties(height=220)
    )


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as a standalone SVG file, rendered by vl-convert (no browser needed).

    Streamlit's chart toolbar offers PNG and the Vega-Lite spec but no SVG; pages add this as a download."""
    buffer = io.StringIO()
    chart.save(buffer, format="svg")
    return buffer.getvalue()
