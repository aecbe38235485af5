"""Draw an Altair chart with an SVG download beside Streamlit's own toolbar (PNG, spec, fullscreen)."""

import altair as alt
import streamlit as st

from cnn_core.charts import to_svg


def chart_with_svg(chart: alt.TopLevelMixin, name: str, key: str, container=st) -> None:
    container.altair_chart(chart, width="stretch")
    # a callable: the SVG is only rendered when someone clicks, never on the live page's reruns
    container.download_button(
        "SVG", lambda: to_svg(chart), f"{name}.svg", "image/svg+xml", key=key, icon=":material/download:"
    )
