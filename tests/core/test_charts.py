"""Charts: every chart a page draws is built here and checked by its spec; smoothing never replaces the raw
curve, and charts export to SVG."""

import re

import altair as alt
import numpy as np
import pandas as pd
import pytest

from cnn_core.charts import (
    bundled_accuracy_chart,
    confusion_chart,
    curves_charts,
    deletion_chart,
    filter_change_chart,
    filter_chart,
    probability_chart,
    seed_points_chart,
    to_svg,
    values_chart,
    weight_histogram_chart,
)
from cnn_core.compare import smooth
from cnn_core.explain import filters as probe
from tests.conftest import ROOT


def _long(epochs: int = 5) -> pd.DataFrame:
    rows = [
        {"run": "r1", "name": "run one", "epoch": e, "elapsed": e, "metric": m, "value": v}
        for e in range(1, epochs + 1)
        for m, v in (("loss", 1 / e), ("val_accuracy", 1 - 1 / (e + 1)))
    ]
    return pd.DataFrame(rows)


def _rows(spec: dict) -> list[dict]:
    """The data rows of a chart's spec (Altair puts them in ``datasets``, named in ``data``)."""
    return spec["datasets"][spec["data"]["name"]]


def test_smoothing_is_drawn_over_the_raw_curve_not_instead_of_it():
    loss, accuracy = (chart.to_dict() for chart in curves_charts(_long(), smoothing=0.6))
    loss_layers = loss["layer"]
    fields = [layer["encoding"]["y"]["field"] for layer in loss_layers]
    assert fields == ["value", "smoothed"]
    assert loss_layers[0]["mark"]["opacity"] < 1  # the raw curve stays, faint


def test_curves_fit_their_container_with_the_legend_below_and_whole_epoch_ticks():
    for chart in curves_charts(_long()):
        spec = chart.to_dict()
        assert spec["width"] == "container"
        encoding = spec["layer"][0]["encoding"]
        assert encoding["color"]["legend"]["orient"] == "bottom" == encoding["strokeDash"]["legend"]["orient"]
        assert encoding["x"]["axis"]["values"] == [1, 2, 3, 4, 5]


def test_the_svg_export_labels_each_epoch_once():
    svg = to_svg(alt.vconcat(*curves_charts(_long(epochs=3))))
    labels = re.findall(r">([0-9.]+)</text>", svg)
    assert labels[:3] == ["1", "2", "3"]  # not "1 2 2 3 3" (ticks at 1, 1.5, 2, … printed as whole numbers)


def test_smooth_is_bias_corrected_and_zero_weight_is_identity():
    values = np.array([1.0, 1.0, 1.0])
    assert np.allclose(smooth(values, 0.9), values)  # no drag towards 0 at the start
    assert np.allclose(smooth([3.0, 1.0], 0.0), [3.0, 1.0])


def test_charts_export_to_svg():
    svg = to_svg(alt.vconcat(*curves_charts(_long())))
    assert svg.lstrip().startswith("<svg") and "loss" in svg
    counts = np.eye(3, dtype=int) * 5
    assert "<svg" in to_svg(confusion_chart(counts, ["a", "b", "c"]))


def test_bundled_accuracy_has_a_dot_per_model_and_measured_test_set():
    rows = pd.DataFrame(
        {"name": ["max", "avg"], "test_accuracy": [0.99, 0.98], "official_test_accuracy": [0.985, None]}
    )
    spec = bundled_accuracy_chart(rows).to_dict()
    assert spec["mark"]["type"] == "circle"
    data = _rows(spec)
    assert len(data) == 3  # the avg model has no official-test number: no dot, not a dot at 0
    assert {r["test set"] for r in data} == {"held-out sample digits", "official MNIST 10k test"}
    assert spec["encoding"]["x"]["scale"]["zero"] is False and spec["encoding"]["x"]["axis"]["format"] == ".1%"


def test_filter_chart_colours_are_symmetric_about_zero_and_one_rect_per_weight():
    grid = probe.FilterGrid("conv1", np.array([[[0.5, -2.0], [1.0, 0.0]]] * 3, dtype=np.float32), 2.0, "")
    frame = probe.filter_frame(grid)
    spec = filter_chart(frame, grid.scale).to_dict()
    assert spec["mark"]["type"] == "rect" and len(_rows(spec)) == 3 * 4
    colour = spec["encoding"]["color"]
    assert colour["field"] == "weight" and colour["scale"]["domain"] == [-2.0, 2.0]
    assert colour["scale"]["domainMid"] == 0
    assert spec["encoding"]["x"]["scale"]["domain"] == [0, 3 * 3 - 1]  # 3 tiles of 2 px and 2 gaps
    assert spec["encoding"]["y"]["scale"]["reverse"] is True  # row 0 at the top, like an image


def test_weight_histogram_and_filter_change_charts_read_the_probe_frames():
    hist = pd.DataFrame({"start": [-1.0, 0.0], "end": [0.0, 1.0], "count": [3, 5]})
    spec = weight_histogram_chart(hist, "conv2").to_dict()
    assert spec["mark"]["type"] == "bar" and len(_rows(spec)) == 2
    assert spec["encoding"]["x"]["title"] == "conv2 weight" and spec["encoding"]["x2"]["field"] == "end"
    change = pd.DataFrame({"epoch": [2, 3, 4], "relative change": [0.4, 0.1, 0.05]})  # epoch 1: nothing before it
    spec = filter_change_chart(change).to_dict()
    assert spec["mark"] == {"type": "line", "point": True} and [r["epoch"] for r in _rows(spec)] == [2, 3, 4]
    assert spec["encoding"]["y"]["axis"]["format"] == "%"
    assert spec["encoding"]["y"]["title"] == "moved since the epoch before"


def test_probability_chart_highlights_the_top_class_on_a_zero_to_one_axis():
    probs = np.array([0.1, 0.7, 0.2])
    spec = probability_chart(probs, ["0", "1", "2"]).to_dict()
    assert spec["mark"]["type"] == "bar"
    assert [r["top"] for r in _rows(spec)] == [False, True, False]
    assert spec["encoding"]["color"]["field"] == "top"
    assert spec["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert spec["encoding"]["x"]["sort"] is None  # classes in their own order, not by probability


def test_deletion_chart_dashes_only_the_random_order():
    curves = pd.DataFrame(
        {"method": ["Saliency"] * 2 + ["random order"] * 2, "fraction removed": [0, 1] * 2, "probability": [1, 0] * 2}
    )
    spec = deletion_chart(curves).to_dict()
    assert spec["mark"]["type"] == "line" and len(_rows(spec)) == 4
    dash = spec["encoding"]["strokeDash"]
    assert dash["condition"]["test"] == "datum.method == 'random order'"
    assert dash["condition"]["value"] == [4, 4] and dash["value"] == [1, 0]  # everything else solid


def test_values_chart_writes_every_number_on_a_symmetric_scale_with_colour_channels_stacked():
    values = np.arange(-4, 14, dtype=np.float32).reshape(2, 3, 3)  # two channels of 3×3
    spec = values_chart({"Filter weights": values}).to_dict()
    cells, numbers = spec["spec"]["layer"]
    assert cells["mark"]["type"] == "rect" and numbers["mark"]["type"] == "text"
    assert cells["encoding"]["color"]["field"] == "shade"
    assert cells["encoding"]["color"]["scale"]["domain"] == [-1.0, 1.0]  # value / largest magnitude
    data = spec["datasets"][spec["data"]["name"]]
    assert len(data) == 18 and [r["value"] for r in data] == values.ravel().tolist()
    assert [r["shade"] for r in data] == pytest.approx((values.ravel() / 13).tolist())
    assert "datum.shade" in numbers["mark"]["color"]["expr"]  # white numbers on dark cells
    assert cells["encoding"]["y"]["sort"] == ["R0", "R1", "R2", "G0", "G1", "G2"]
    assert spec["spec"]["height"] == {"step": 28} and spec["facet"]["sort"] == ["Filter weights"]


def test_values_chart_puts_several_arrays_side_by_side_each_on_its_own_scale():
    pixels, weights = np.full((1, 3, 3), 0.5, np.float32), np.array([[[-4, 0, 4]] * 3], np.float32)
    spec = values_chart({"Input": pixels, "Weights": weights, "Products": pixels * weights}).to_dict()
    assert spec["facet"]["field"] == "panel"
    assert spec["facet"]["sort"] == ["Input", "Weights", "Products"]  # in the order given
    data = spec["datasets"][spec["data"]["name"]]
    by_panel = {p: [r for r in data if r["panel"] == p] for p in ("Input", "Weights", "Products")}
    assert all(len(rows) == 9 for rows in by_panel.values())  # one chart, one data set, 3 panels
    assert {r["shade"] for r in by_panel["Input"]} == {1.0}  # 0.5 is the largest value of its own panel
    assert [r["shade"] for r in by_panel["Weights"][:3]] == [-1.0, 0.0, 1.0]
    assert [r["value"] for r in by_panel["Products"][:3]] == [-2.0, 0.0, 2.0]
    assert "<svg" in to_svg(values_chart({"Input": pixels, "Weights": weights}))


def test_the_confusion_matrix_has_a_legend_for_mistakes_and_a_distinct_bold_diagonal():
    counts = np.array([[50, 2, 0], [9, 40, 1], [0, 0, 48]])
    cells, wrong, right = confusion_chart(counts, ["a", "b", "c"]).to_dict()["layer"]
    colour = cells["encoding"]["color"]
    assert colour["legend"]["title"] == "mistakes" and colour["scale"]["domain"] == [0, 9]
    assert colour["condition"] == {"test": "datum.right", "value": "#cfe8cf"}
    assert right["mark"]["fontWeight"] == "bold" and right["transform"] == [{"filter": "datum.right"}]
    assert wrong["encoding"]["color"]["condition"] == {"test": "datum.dark", "value": "white"}
    dark = [r for r in _rows(confusion_chart(counts, ["a", "b", "c"]).to_dict()) if r["dark"]]
    assert [(r["true"], r["predicted"]) for r in dark] == [("b", "a")]  # white text only on the darkest cell


def test_the_seed_chart_legend_lists_only_the_poolings_compared():
    runs = pd.DataFrame({"pooling": ["max", "avg"], "seed": [0, 0], "test_accuracy": [0.98, 0.97]})
    summary = pd.DataFrame({"pooling": ["max", "avg"], "mean": [0.98, 0.97], "std": [0.0, 0.0]})
    spec = seed_points_chart(runs, summary).to_dict()
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domain"] == ["max", "avg"]


def test_the_confusion_matrix_frames_the_clicked_cell():
    counts = np.array([[5, 1], [2, 7]])
    plain = confusion_chart(counts, ["cat", "dog"], select=True).to_dict()
    framed = confusion_chart(counts, ["cat", "dog"], select=True, highlight={"true": "dog", "predicted": "cat"})
    layers = framed.to_dict()["layer"]
    assert len(layers) == len(plain["layer"]) + 1
    frame = layers[-1]
    assert frame["mark"]["stroke"] and frame["mark"]["fill"] is None


def test_no_page_builds_a_chart_itself():
    """Charts live in cnn_core.charts: a view or a ui helper that imports Altair is drawing one of its own."""
    pages = sorted((ROOT / "views").glob("*.py")) + sorted((ROOT / "ui").glob("*.py"))
    drawing = [p.name for p in pages if p.name != "charts.py" and "import altair" in p.read_text()]
    assert drawing == []
