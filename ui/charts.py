"""Draw Altair charts with an SVG download beside Streamlit's own toolbar (PNG, spec, fullscreen), and build the
charts every session redraws once per their data.

Building an Altair chart validates each part as it is made: 30-100 ms for the curves or a confusion matrix
on a 2-core machine, holding the GIL. The Train page redraws them on every rerun of every session (and every
session reruns when any run starts or ends), so a class of 20 kept the server's event loop waiting for the
GIL for seconds (docs/BENCHMARKS.md). ``st.cache_data`` builds each chart once per frame and hands every
session its own copy (unpickling one takes well under a millisecond).
"""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

import cnn_core.charts
from cnn_core.charts import to_svg


@st.cache_data(max_entries=64, show_spinner=False)
def curves_charts(
    long: pd.DataFrame, color: str = "name", smoothing: float = 0.0, x: str = "epoch"
) -> list[alt.LayerChart]:
    """``cnn_core.charts.curves_charts``, built once per frame of curves."""
    return cnn_core.charts.curves_charts(long, color, smoothing, x)


@st.cache_data(max_entries=64, show_spinner=False)
def confusion_chart(counts: np.ndarray, classes: list[str], title: str = "") -> alt.LayerChart:
    """``cnn_core.charts.confusion_chart`` (without selection or highlight), built once per matrix."""
    return cnn_core.charts.confusion_chart(counts, classes, title)


def chart_with_svg(chart: alt.TopLevelMixin, name: str, key: str, container=st) -> None:
    container.altair_chart(chart, width="stretch")
    # a callable: the SVG is only rendered when someone clicks, never on the live page's reruns
    container.download_button(
        "SVG", lambda: to_svg(chart), f"{name}.svg", "image/svg+xml", key=key, icon=":material/download:"
    )


def charts_with_svg(charts: list[alt.TopLevelMixin], name: str, key: str, container=st) -> None:
    """Charts side by side, each filling its column; one SVG download holds them all, one above the other."""
    for column, chart in zip(container.columns(len(charts)), charts, strict=True):
        column.altair_chart(chart, width="stretch")
    container.download_button(
        "SVG",
        lambda: to_svg(alt.vconcat(*charts)),
        f"{name}.svg",
        "image/svg+xml",
        key=key,
        icon=":material/download:",
    )
