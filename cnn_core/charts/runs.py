"""Charts of runs: training curves, confusion matrices, per-seed and per-class accuracy, the bundled models."""

from __future__ import annotations

from typing import Any, cast

import altair as alt
import numpy as np
import pandas as pd

from cnn_core.charts.colours import POOLING_COLORS, pooling_scale
from cnn_core.compare import smooth

TEST_SETS = {"test_accuracy": "held-out sample digits", "official_test_accuracy": "official MNIST 10k test"}


def curves_charts(
    long: pd.DataFrame, color: str = "name", smoothing: float = 0.0, x: str = "epoch"
) -> list[alt.LayerChart]:
    """Two charts, loss and accuracy (dashed = validation), each as wide as its container with the legend
    below it. Two charts rather than one concatenation: a concatenated chart cannot fit its container, so it
    was drawn wider than the page and its legend was cut off. With smoothing, the smoothed line is drawn over
    the faint raw one, never instead of it."""
    long = long.sort_values(["run", "metric", x]).copy()
    long["smoothed"] = (
        long.groupby(["run", "metric"])["value"].transform(lambda v: smooth(v.to_numpy(), smoothing))
        if not long.empty
        else []
    )
    long["split"] = np.where(long["metric"].astype(str).str.startswith("val_"), "validation", "train")
    xs = sorted(long[x].unique()) if not long.empty else []
    # Whole-number ticks: with few epochs, name each one (a rendered SVG otherwise labels 1, 1.5, 2 as "1 2 2").
    ticks = [int(v) for v in xs] if 0 < len(xs) <= 20 and x == "epoch" else alt.Undefined
    legend = alt.Legend(orient="bottom", direction="horizontal")
    charts: list[alt.LayerChart] = []
    for panel in ("loss", "accuracy"):
        data = long[long["metric"].astype(str).str.endswith(panel)]
        base = alt.Chart(data).encode(
            x=alt.X(f"{x}:Q", title=x, axis=alt.Axis(format="d", tickMinStep=1, values=ticks)),
            color=alt.Color(f"{color}:N", scale=POOLING_COLORS if color == "pooling" else alt.Undefined, legend=legend),
            strokeDash=alt.StrokeDash("split:N", title="split", legend=legend),
            detail="run:N",
            tooltip=["name:N", f"{x}:Q", "metric:N", alt.Tooltip("value:Q", format=".4f")],
        )
        raw = base.mark_line(opacity=0.25 if smoothing > 0 else 1.0, point=len(data) < 60 and smoothing == 0)
        layers = [raw.encode(y=alt.Y("value:Q", title=panel, scale=alt.Scale(zero=False)))]
        if smoothing > 0:
            layers.append(base.mark_line().encode(y=alt.Y("smoothed:Q", title=panel, scale=alt.Scale(zero=False))))
        charts.append(cast(alt.LayerChart, alt.layer(*layers).properties(height=220, title=panel, width="container")))
    return charts


def confusion_chart(
    counts: np.ndarray,
    classes: list[str],
    title: str = "",
    select: bool = False,
    highlight: dict[str, Any] | None = None,
) -> alt.LayerChart:
    """A heatmap of counts[true, predicted] with the numbers written in the cells: mistakes coloured by how
    many (with a legend), the diagonal of right answers in a calm green with bold numbers; ``highlight``
    ({"true": name, "predicted": name}, a clicked cell) framed."""
    n = len(classes)
    frame = pd.DataFrame(
        [
            {"true": classes[i], "predicted": classes[j], "count": int(counts[i, j]), "right": i == j}
            for i in range(n)
            for j in range(n)
        ]
    )
    worst = max(int(frame.loc[~frame["right"], "count"].max()) if n > 1 else 0, 1)
    frame["dark"] = ~frame["right"] & (frame["count"] > worst / 2)  # white numbers on the darkest cells
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("predicted:N", sort=classes, axis=alt.Axis(labelAngle=0, labelOverlap=False)),
        y=alt.Y("true:N", sort=classes, axis=alt.Axis(labelOverlap=False)),
        tooltip=["true:N", "predicted:N", "count:Q"],
    )
    mistakes = alt.Color(
        "count:Q",
        scale=alt.Scale(scheme="orangered", domain=[0, worst]),
        legend=alt.Legend(title="mistakes", orient="bottom", gradientLength=160),
    )
    cells = base.mark_rect().encode(color=alt.condition("datum.right", alt.value("#cfe8cf"), mistakes))
    if select:
        cells = cells.add_params(alt.selection_point(name="cell", fields=["true", "predicted"]))
    wrong = base.transform_filter("!datum.right").mark_text(fontSize=10)
    wrong = wrong.encode(text="count:Q", color=alt.condition("datum.dark", alt.value("white"), alt.value("black")))
    right = base.transform_filter("datum.right").mark_text(fontSize=11, fontWeight="bold").encode(text="count:Q")
    chart = cells + wrong + right
    if highlight:
        frame = alt.Chart(pd.DataFrame([highlight])).mark_rect(fill=None, stroke="#1f4e9c", strokeWidth=3)
        chart += frame.encode(x=alt.X("predicted:N", sort=classes), y=alt.Y("true:N", sort=classes))
    return cast(alt.LayerChart, chart.properties(width=300, height=300))


def seed_points_chart(runs: pd.DataFrame, summary: pd.DataFrame) -> alt.LayerChart:
    """Final test accuracy per seed (points) with the mean ± std per pooling."""
    summary = summary.assign(low=summary["mean"] - summary["std"], high=summary["mean"] + summary["std"])
    points = (
        alt.Chart(runs)
        .mark_circle(size=80, opacity=0.7)
        .encode(
            x=alt.X("pooling:N", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("test_accuracy:Q", title="test accuracy", scale=alt.Scale(zero=False), axis=alt.Axis(format="%")),
            color=alt.Color("pooling:N", scale=pooling_scale(runs["pooling"])),
            tooltip=["pooling", "seed", alt.Tooltip("test_accuracy:Q", format=".4f")],
        )
    )
    bars = (
        alt.Chart(summary)
        .mark_errorbar(thickness=2)
        .encode(x="pooling:N", y=alt.Y("low:Q", title="test accuracy"), y2="high:Q")
    )
    means = alt.Chart(summary).mark_tick(size=30, thickness=2, color="black").encode(x="pooling:N", y="mean:Q")
    return cast(
        alt.LayerChart, (points + bars + means).properties(height=260, title="test accuracy per seed, mean ± std")
    )


def per_class_chart(frame: pd.DataFrame, value: str) -> alt.Chart:
    return cast(
        alt.Chart,
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=None),
            y=alt.Y(f"{value}:Q"),
            color=alt.condition(alt.datum[value] > 0, alt.value("#1f77b4"), alt.value("#ff7f0e")),
            tooltip=["class", alt.Tooltip(f"{value}:Q", format=".2f")],
        )
        .properties(height=220),
    )


def bundled_accuracy_chart(rows: pd.DataFrame) -> alt.Chart:
    """One dot per bundled model and test set (``checkpoint.bundled_checkpoints`` rows): the held-out
    sample and, where it was measured, the official MNIST test set."""
    long = rows.melt(id_vars="name", value_vars=list(TEST_SETS), var_name="test set", value_name="accuracy").dropna()
    long["test set"] = long["test set"].map(TEST_SETS)
    return cast(
        alt.Chart,
        alt.Chart(long)
        .mark_circle(size=160)
        .encode(
            x=alt.X("accuracy:Q", scale=alt.Scale(zero=False), axis=alt.Axis(format=".1%")),
            y=alt.Y("name:N", title=None),
            color="test set:N",
            tooltip=["name", "test set", alt.Tooltip("accuracy:Q", format=".2%")],
        )
        .properties(height=120),
    )
