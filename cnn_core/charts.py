"""Every Altair chart the pages draw: training curves, confusion matrices, per-seed accuracy, the bundled
models' accuracy, filters and their weights, class probabilities, deletion curves and the playground's
numbers.

Charts are built here from plain frames and arrays (no Streamlit, no models) so pages stay views and
every chart can be tested by its spec.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import altair as alt
import numpy as np
import pandas as pd

from cnn_core.compare import smooth

POOLING_COLORS = alt.Scale(domain=["max", "avg", "none"], range=["#d62728", "#1f77b4", "#7f7f7f"])
TEST_SETS = {"test_accuracy": "held-out sample digits", "official_test_accuracy": "official MNIST 10k test"}


def _diverging(top: float) -> alt.Scale:
    """Blue negative, white zero, red positive, symmetric about 0 (as ``cnn_core.heatmap`` draws arrays)."""
    return alt.Scale(scheme="redblue", reverse=True, domain=[-top, top], domainMid=0)


def pooling_scale(poolings: pd.Series) -> alt.Scale:
    """The pooling colours for just the poolings present (a legend does not list "none" when no run has it)."""
    present = [p for p in POOLING_COLORS.domain if p in set(poolings)]
    colours = dict(zip(POOLING_COLORS.domain, POOLING_COLORS.range, strict=True))
    return alt.Scale(domain=present, range=[colours[p] for p in present])


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
    charts = []
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
        charts.append(alt.layer(*layers).properties(height=220, title=panel, width="container"))
    return charts


def confusion_chart(counts: np.ndarray, classes: list[str], title: str = "", select: bool = False) -> alt.Chart:
    """A heatmap of counts[true, predicted] with the numbers written in the cells: mistakes coloured by how
    many (with a legend), the diagonal of right answers in a calm green with bold numbers."""
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
    return (cells + wrong + right).properties(width=300, height=300)


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


def bundled_accuracy_chart(rows: pd.DataFrame) -> alt.Chart:
    """One dot per bundled model and test set (``checkpoint.bundled_checkpoints`` rows): the held-out
    sample and, where it was measured, the official MNIST test set."""
    long = rows.melt(id_vars="name", value_vars=list(TEST_SETS), var_name="test set", value_name="accuracy").dropna()
    long["test set"] = long["test set"].map(TEST_SETS)
    return (
        alt.Chart(long)
        .mark_circle(size=160)
        .encode(
            x=alt.X("accuracy:Q", scale=alt.Scale(zero=False), axis=alt.Axis(format=".1%")),
            y=alt.Y("name:N", title=None),
            color="test set:N",
            tooltip=["name", "test set", alt.Tooltip("accuracy:Q", format=".2%")],
        )
        .properties(height=120)
    )


def filter_chart(frame: pd.DataFrame, scale: float) -> alt.Chart:
    """A layer's filters (``probe.filter_frame`` rows) as one rect per weight on continuous axes, so the
    empty gaps between tiles stay visible; one colour scale from −scale to +scale for the whole layer.

    Channels are written as objects (``alt.X2``, ``alt.Tooltip``), not strings, here and in the charts
    below that a page redraws on every slider step: measured, Altair resolves a string shorthand
    against its schema in ~2 ms each, 10 ms for this chart against 2 ms; the spec is the same."""
    width, height = int(frame["x"].max()) + 1, int(frame["y"].max()) + 1
    cell = int(np.clip(120 // height, 6, 20))  # px per weight: a row of 6 filters is not a thin strip
    legend = alt.Legend(gradientLength=max(40, height * cell - 30))
    return (
        alt.Chart(frame)
        .mark_rect()
        .transform_calculate(x_end="datum.x + 1", y_end="datum.y + 1")
        .encode(
            x=alt.X("x:Q", scale=alt.Scale(domain=[0, width], nice=False), axis=None),
            x2=alt.X2("x_end:Q"),
            y=alt.Y("y:Q", scale=alt.Scale(domain=[0, height], nice=False, reverse=True), axis=None),
            y2=alt.Y2("y_end:Q"),
            color=alt.Color("weight:Q", scale=_diverging(scale), legend=legend),
            tooltip=[alt.Tooltip("filter:Q"), alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(width=width * cell, height=height * cell)
    )


def weight_histogram_chart(hist: pd.DataFrame, layer: str) -> alt.Chart:
    """A layer's weight distribution from ``probe.weight_histogram`` bins (start, end, count)."""
    return (
        alt.Chart(hist)
        .mark_bar()
        .encode(x=alt.X("start:Q", title=f"{layer} weight"), x2=alt.X2("end:Q"), y=alt.Y("count:Q"), y2=alt.Y2Datum(0))
        .properties(height=180)
    )


def filter_change_chart(change: pd.DataFrame) -> alt.Chart:
    """How far the filters moved in each epoch (``probe.filter_change``, from epoch 2 on: epoch 1 has
    nothing before it), as a percentage of their size."""
    return (
        alt.Chart(change)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:O", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("relative change:Q", title="moved since the epoch before", axis=alt.Axis(format="%")),
            tooltip=[alt.Tooltip("epoch:O"), alt.Tooltip("relative change:Q", format=".1%")],
        )
        .properties(height=180)
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
    return alt.layer(*layers).properties(height=180)


def embedding_chart(points: pd.DataFrame, classes: list[str], title: str = "") -> alt.Chart:
    """Test images as dots at their 2-D projection (``embedding`` rows: index, x, y, class), one colour per
    class. A click selects one dot (selection ``point``, field ``index``): the page shows that image."""
    pick = alt.selection_point(name="point", fields=["index"], on="click", clear="dblclick")
    return (
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
        .properties(height=480)
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
    return alt.layer(*layers).properties(height=160)


INVARIANCE_AXES = {
    "shift": "shift (pixels)",
    "rotation": "rotation (degrees)",
    "scale": "scale (× size)",
}


def invariance_charts(curves: pd.DataFrame) -> list[alt.LayerChart]:
    """Test accuracy against shift, rotation and scale (``invariance.curves`` rows: run, kind, amount, mean,
    std, seeds), one line per run with a band of ± one standard deviation over its seeds."""
    curves = curves.assign(low=curves["mean"] - curves["std"], high=curves["mean"] + curves["std"])
    legend = alt.Legend(orient="bottom", direction="horizontal", title=None)
    charts = []
    for kind, title in INVARIANCE_AXES.items():
        data = curves[curves["kind"] == kind]
        base = alt.Chart(data).encode(x=alt.X("amount:Q", title=title), color=alt.Color("run:N", legend=legend))
        band = base.mark_area(opacity=0.2).encode(y=alt.Y("low:Q"), y2=alt.Y2("high:Q"))
        line = base.mark_line(point=True).encode(
            y=alt.Y("mean:Q", title="test accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            tooltip=[
                alt.Tooltip("run:N"),
                alt.Tooltip("amount:Q", title=title),
                alt.Tooltip("mean:Q", format=".2%", title="accuracy"),
                alt.Tooltip("std:Q", format=".2%"),
                alt.Tooltip("seeds:Q"),
            ],
        )
        charts.append(alt.layer(band, line).properties(height=240, title=kind, width="container"))
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
            "ink": image.ravel(),
            "region": [f"{r},{c}" for r, c in zip(*block, strict=True)],
        }
    )
    pick = alt.selection_point(name="region", fields=["region"], on="click")
    x = alt.X("x:O", axis=None)
    y = alt.Y("y:O", axis=None)
    pixels = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=x,
            y=y,
            color=alt.Color("ink:Q", scale=alt.Scale(scheme="greys", reverse=True, domain=[0, 1]), legend=None),
        )
        .add_params(pick)
    )
    layers = [pixels]
    if chosen is not None:
        marked = frame[frame["region"] == chosen]
        layers.append(alt.Chart(marked).mark_rect(color="#ffb000", opacity=0.45).encode(x=x, y=y))
    return alt.layer(*layers).properties(width=280, height=280)


def probability_chart(probs: np.ndarray, classes: list[str]) -> alt.Chart:
    """One bar per class on a 0-100 % axis; the top class (or tied top classes) in its own colour."""
    bars = pd.DataFrame({"class": classes, "probability": probs, "top": probs == probs.max()})
    return (
        alt.Chart(bars)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=None),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            color=alt.Color("top:N", legend=None),
            tooltip=[alt.Tooltip("class:N"), alt.Tooltip("probability:Q", format=".2%")],
        )
        .properties(height=220)
    )


def deletion_chart(curves: pd.DataFrame) -> alt.Chart:
    """Deletion curves (``faithfulness.deletion_frame`` rows), one line per method; the random order,
    the curve to beat, is dashed."""
    dashed = alt.condition("datum.method == 'random order'", alt.value([4, 4]), alt.value([1, 0]))
    return (
        alt.Chart(curves)
        .mark_line()
        .encode(
            x=alt.X("fraction removed:Q", axis=alt.Axis(format="%")),
            y=alt.Y("probability:Q"),
            color=alt.Color("method:N"),
            strokeDash=dashed,
        )
        .properties(height=260)
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
    cells = alt.Chart(mark="rect").encode(x=x, y=y, color=alt.Color("shade:Q", legend=None, scale=_diverging(1.0)))
    text = alt.Text("value:Q", format=".3~g")
    # Numbers readable on dark cells; an expression because alt.condition costs a schema validation (~25 ms).
    ink = alt.ExprRef(expr="abs(datum.shade) > 0.6 ? 'white' : 'black'")
    numbers = alt.Chart(mark=alt.MarkDef(type="text", fontSize=12, color=ink)).encode(x=x, y=y, text=text)
    layer = alt.LayerChart(layer=[cells, numbers], width=alt.Step(46), height=alt.Step(28))
    header = alt.Header(labelFontSize=13, labelFontWeight="bold", labelOrient="top")
    panel = alt.Facet("panel:N", sort=list(panels), title=None, header=header)
    return alt.FacetChart(data=frame, spec=layer, facet=panel, columns=len(panels))


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as a standalone SVG file, rendered by vl-convert (no browser needed).

    Streamlit's chart toolbar offers PNG and the Vega-Lite spec but no SVG; pages add this as a download."""
    buffer = io.StringIO()
    chart.save(buffer, format="svg")
    return buffer.getvalue()
