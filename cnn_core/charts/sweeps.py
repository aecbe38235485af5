"""The Sweep page's Altair charts, drawn from ``cnn_core.sweeps.results`` tables (no Streamlit here).

Parallel coordinates put every varied parameter and the metric on its own vertical axis scaled to [0, 1]
(categories by their order), one line per trial: a glance shows which values the best lines pass through.
"""

from __future__ import annotations

from typing import Any, Final, cast

import altair as alt
import pandas as pd

from cnn_core.config.sweep import parameter_words
from cnn_core.sweeps.results import METRIC

PALETTE: Final = "viridis"


def parallel_coordinates(frame: pd.DataFrame, paths: list[str], metric: str = METRIC) -> alt.LayerChart:
    """One line per finished trial across the varied parameters, the seed and the metric."""
    done = frame.dropna(subset=[metric])
    axes = [*paths, "seed", metric]
    rows = []
    for _, trial in done.iterrows():
        for axis in axes:
            rows.append(
                {
                    "run_id": trial["run_id"],
                    "name": trial["name"],
                    "axis": _words(axis),
                    "position": _scaled(done[axis], trial[axis]),
                    "value": str(trial[axis] if axis != metric else round(trial[axis], 4)),
                    metric: trial[metric],
                }
            )
    long = pd.DataFrame(rows, columns=["run_id", "name", "axis", "position", "value", metric])
    order = [_words(a) for a in axes]
    base = alt.Chart(long).encode(
        x=alt.X("axis:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("position:Q", axis=None, scale=alt.Scale(domain=[0, 1])),
    )
    lines = base.mark_line(opacity=0.7).encode(
        detail="run_id:N",
        color=alt.Color(f"{metric}:Q", scale=alt.Scale(scheme=PALETTE), title=metric),
        tooltip=["name:N", alt.Tooltip(f"{metric}:Q", format=".4f")],
    )
    ticks = base.mark_text(dx=4, align="left", fontSize=10).encode(text="value:N")
    ticks = ticks.transform_aggregate(position="mean(position)", groupby=["axis", "value"])
    rules = alt.Chart(pd.DataFrame({"axis": order})).mark_rule(color="#999").encode(x=alt.X("axis:N", sort=order))
    chart = rules + lines + ticks
    return cast(
        alt.LayerChart, chart.properties(title="Trials across the varied parameters", height=300, width=150 * len(axes))
    )


def mean_std_chart(table: pd.DataFrame, path: str, metric: str = METRIC) -> alt.LayerChart:
    """The metric against one parameter: mean ± std over the trials sharing each value (``results.mean_std``)."""
    data = table.assign(
        low=table["mean"] - table["std"], high=table["mean"] + table["std"], value=table["value"].astype(str)
    )
    x = alt.X("value:N", title=parameter_words(path), sort=None)
    bars = alt.Chart(data).mark_rule(strokeWidth=2).encode(x=x, y=alt.Y("low:Q", title=metric), y2="high:Q")
    points = (
        alt.Chart(data)
        .mark_point(filled=True, size=70)
        .encode(
            x=x,
            y=alt.Y("mean:Q", scale=alt.Scale(zero=False)),
            tooltip=["value:N", alt.Tooltip("mean:Q", format=".4f"), alt.Tooltip("std:Q", format=".4f"), "n:Q"],
        )
    )
    return cast(alt.LayerChart, (bars + points).properties(title=f"{metric}: mean ± std", height=220))


def importance_chart(table: pd.DataFrame) -> alt.Chart:
    """Optuna's parameter importances (they sum to 1) as bars, most important first."""
    table = table.assign(parameter=table["parameter"].map(_words))
    return cast(
        alt.Chart,
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X("importance:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("parameter:N", sort="-x", title=None, axis=alt.Axis(labelLimit=300)),
            tooltip=["parameter:N", alt.Tooltip("importance:Q", format=".3f")],
        )
        .properties(title="Which parameters mattered (fANOVA)", height=alt.Step(28)),
    )


def best_so_far_chart(frame: pd.DataFrame, metric: str = METRIC) -> alt.Chart:
    """The best metric after each finished trial, in the order they finished."""
    done = frame.dropna(subset=[metric, "ended"]).sort_values("ended", kind="stable").reset_index(drop=True)
    data = pd.DataFrame({"trials finished": range(1, len(done) + 1), "best": done[metric].cummax()})
    return cast(
        alt.Chart,
        alt.Chart(data)
        .mark_line(point=True, interpolate="step-after")
        .encode(x=alt.X("trials finished:Q", axis=alt.Axis(tickMinStep=1)), y=alt.Y("best:Q", title=f"best {metric}"))
        .properties(title="Best so far", height=200),
    )


def _words(column: str) -> str:
    """A column of the trial frame as the page names it: a parameter path in the Train page's words."""
    return parameter_words(column) if column.startswith(("model.", "train.")) else column


def _scaled(column: pd.Series, value: Any) -> float:
    """``value``'s place on its axis in [0, 1]: numbers by value, anything else by its sorted order."""
    values = column.dropna()
    if pd.api.types.is_numeric_dtype(values):
        low, high = float(values.min()), float(values.max())
        return 0.5 if high == low else (float(value) - low) / (high - low)
    levels = sorted(values.astype(str).unique())
    return 0.5 if len(levels) == 1 else levels.index(str(value)) / (len(levels) - 1)
