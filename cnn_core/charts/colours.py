"""Colour scales shared by the charts: the pooling colours and the diverging red-white-blue of weights."""

from __future__ import annotations

import altair as alt
import pandas as pd

POOLING_COLORS = alt.Scale(domain=["max", "avg", "none"], range=["#d62728", "#1f77b4", "#7f7f7f"])


def diverging(top: float) -> alt.Scale:
    """Blue negative, white zero, red positive, symmetric about 0 (as ``cnn_core.heatmap`` draws arrays)."""
    return alt.Scale(scheme="redblue", reverse=True, domain=[-top, top], domainMid=0)


def pooling_scale(poolings: pd.Series) -> alt.Scale:
    """The pooling colours for just the poolings present (a legend does not list "none" when no run has it)."""
    present = [p for p in POOLING_COLORS.domain if p in set(poolings)]
    colours = dict(zip(POOLING_COLORS.domain, POOLING_COLORS.range, strict=True))
    return alt.Scale(domain=present, range=[colours[p] for p in present])
