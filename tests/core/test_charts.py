"""Charts: smoothing never replaces the raw curve, and every chart exports to SVG."""

import numpy as np
import pandas as pd

from cnn_core.charts import confusion_chart, curves_chart, to_svg
from cnn_core.compare import smooth


def _long() -> pd.DataFrame:
    rows = [
        {"run": "r1", "name": "run one", "epoch": e, "elapsed": e, "metric": m, "value": v}
        for e in range(1, 6)
        for m, v in (("loss", 1 / e), ("val_accuracy", 1 - 1 / (e + 1)))
    ]
    return pd.DataFrame(rows)


def test_smoothing_is_drawn_over_the_raw_curve_not_instead_of_it():
    spec = curves_chart(_long(), smoothing=0.6).to_dict()
    loss_layers = spec["vconcat"][0]["layer"]
    fields = [layer["encoding"]["y"]["field"] for layer in loss_layers]
    assert fields == ["value", "smoothed"]
    assert loss_layers[0]["mark"]["opacity"] < 1  # the raw curve stays, faint


def test_smooth_is_bias_corrected_and_zero_weight_is_identity():
    values = np.array([1.0, 1.0, 1.0])
    assert np.allclose(smooth(values, 0.9), values)  # no drag towards 0 at the start
    assert np.allclose(smooth([3.0, 1.0], 0.0), [3.0, 1.0])


def test_charts_export_to_svg():
    svg = to_svg(curves_chart(_long()))
    assert svg.lstrip().startswith("<svg") and "loss" in svg
    counts = np.eye(3, dtype=int) * 5
    assert "<svg" in to_svg(confusion_chart(counts, ["a", "b", "c"]))
