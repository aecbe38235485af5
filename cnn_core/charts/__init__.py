"""Every Altair chart the pages draw, by what it shows: runs (curves, confusion matrices, seeds), weights
(filters, their change), answers (probabilities, deletion curves, the playground's numbers) and learning (the
embedding, invariance curves, Predict first's digit).

Charts are built here from plain frames and arrays (no Streamlit, no models) so pages stay views and
every chart can be tested by its spec.
"""

from __future__ import annotations

import io

import altair as alt

from cnn_core.charts.answers import deletion_chart, probability_chart, values_chart
from cnn_core.charts.colours import POOLING_COLORS, diverging, pooling_scale
from cnn_core.charts.learning import INVARIANCE_AXES, embedding_chart, invariance_charts, region_chart, separation_chart
from cnn_core.charts.runs import (
    TEST_SETS,
    bundled_accuracy_chart,
    confusion_chart,
    curves_charts,
    per_class_chart,
    seed_points_chart,
)
from cnn_core.charts.weights import filter_change_chart, filter_chart, layer_change_chart, weight_histogram_chart

__all__ = [
    "POOLING_COLORS",
    "diverging",
    "pooling_scale",
    "TEST_SETS",
    "curves_charts",
    "confusion_chart",
    "seed_points_chart",
    "per_class_chart",
    "bundled_accuracy_chart",
    "filter_chart",
    "weight_histogram_chart",
    "filter_change_chart",
    "layer_change_chart",
    "probability_chart",
    "deletion_chart",
    "values_chart",
    "embedding_chart",
    "separation_chart",
    "INVARIANCE_AXES",
    "invariance_charts",
    "region_chart",
    "to_svg",
]


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as a standalone SVG file, rendered by vl-convert (no browser needed).

    Streamlit's chart toolbar offers PNG and the Vega-Lite spec but no SVG; pages add this as a download."""
    buffer = io.StringIO()
    chart.save(buffer, format="svg")
    return buffer.getvalue()
