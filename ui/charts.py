"""Draw Altair charts with an SVG download beside Streamlit's own toolbar (PNG, spec, fullscreen)."""

import altair as alt
import streamlit as st

from cnn_core.charts import to_svg


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
