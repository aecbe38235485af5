"""Specs of the charts over a whole run and test set: clickable points and regions, lines per run or layer."""

import json

import numpy as np
import pandas as pd

from cnn_core.charts import embedding_chart, invariance_charts, layer_change_chart, region_chart, separation_chart
from cnn_core.compare import invariance


def spec(chart) -> dict:
    return json.loads(chart.to_json())


def test_the_embedding_chart_selects_one_test_image_by_its_index_on_click():
    points = pd.DataFrame({"index": [4, 9], "x": [0.1, -0.2], "y": [0.3, 0.0], "class": ["1", "7"]})
    params = spec(embedding_chart(points, [str(c) for c in range(10)], "epoch 2 of 3"))["params"]
    assert params[0]["name"] == "point" and params[0]["select"]["fields"] == ["index"]


def test_the_digit_of_predict_first_selects_a_block_and_outlines_the_chosen_one():
    image = np.zeros((28, 28))
    plain = spec(region_chart(image, 3))
    assert plain["params"][0]["name"] == "region" and len(plain["layer"]) == 1
    chosen = spec(region_chart(image, 3, "2,0"))
    assert len(chosen["layer"]) == 2
    marked = chosen["datasets"][chosen["layer"][1]["data"]["name"]]
    assert len(marked) == 10 * 9 and {row["region"] for row in marked} == {"2,0"}  # rows 19-27 × columns 0-9


def test_invariance_charts_are_shift_rotation_and_scale_with_a_line_per_run():
    rows = [
        {"run": run, "kind": kind, "amount": float(a), "mean": 0.9, "std": 0.01, "seeds": 3}
        for run in ("max pooling", "avg pooling")
        for kind, amounts in invariance.AMOUNTS.items()
        for a in amounts
    ]
    charts = invariance_charts(pd.DataFrame(rows))
    assert [c.title for c in charts] == ["shift", "rotation", "scale"]
    shift = spec(charts[0])
    assert shift["layer"][1]["encoding"]["x"]["axis"]["values"] == [0, 1, 2, 3, 4]


def test_change_and_separation_charts_mark_the_epoch_on_show():
    changes = pd.DataFrame({"layer": ["conv1", "conv2"], "epoch": [2, 2], "relative change": [0.1, 0.2]})
    assert len(spec(layer_change_chart(changes, 2))["layer"]) == 2
    assert len(spec(layer_change_chart(changes))["layer"]) == 1
    scores = pd.DataFrame({"epoch": [1, 2], "separation": [1.0, 3.0]})
    assert len(spec(separation_chart(scores, 1))["layer"]) == 2
