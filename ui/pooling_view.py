"""Compare's max-vs-average comparison: curves, verdict, accuracy per seed, per-class gap, confusion matrices.

Everything drawn here is computed once per state of its runs (ids, statuses, epochs done, names) and shared by
every session, so a control elsewhere on the page, or the live view's 1-second redraw while nothing has
changed, costs no SQL, no pandas and no chart building: only sending the charts again.
"""

import pandas as pd
import streamlit as st

from cnn_core.charts import confusion_chart, curves_charts, per_class_chart, seed_points_chart
from cnn_core.compare import (
    EPOCH_TIME_HOW,
    curves,
    load_predictions,
    pooling_comparison,
    summed_confusion,
)
from cnn_core.runs import Run, RunStore
from ui.charts import chart_with_svg, charts_with_svg


def stamp(runs: list[Run]) -> tuple:
    """What the drawings of these runs depend on: when none of it changes, nothing is recomputed."""
    return tuple((r.id, r.status.value, r.epochs_done, r.name) for r in runs)


@st.cache_data(max_entries=32, show_spinner=False)
def run_curves(root: str, ids: tuple[str, ...], state: tuple) -> pd.DataFrame:
    """``compare.curves`` for these runs in this state (``state``: their ``stamp``)."""
    return curves(RunStore(root), list(ids))


@st.cache_resource(max_entries=8, show_spinner=False)
def _comparison(root: str, ids: tuple[str, ...], state: tuple) -> dict:
    """The comparison's numbers and charts (read-only once built: shared by every session)."""
    store = RunStore(root)
    result = pooling_comparison(store, list(ids))
    long = run_curves(root, ids, state)
    charts = {"curves": curves_charts(long, color="pooling") if not long.empty else None}
    if not result["summary"].empty:
        charts["seeds"] = seed_points_chart(result["runs"], result["summary"])
        if not result["per_class"].empty:
            charts["per_class"] = per_class_chart(result["per_class"], "max − avg (points)")
        for pool in ("max", "avg"):
            runs = result["runs"].loc[result["runs"]["pooling"] == pool, "run"]
            preds = [p for p in (load_predictions(store, r) for r in runs) if p]
            if preds:
                title = f"{pool} pooling (all seeds)"
                charts[pool] = confusion_chart(summed_confusion(preds), preds[0]["classes"], title)
    return {"result": result, "charts": charts}


def pooling_view(store: RunStore, members: list[Run]) -> bool:
    """Draw the comparison of ``members``; True once every run of it has finished."""
    ids = tuple(r.id for r in members)
    drawn = _comparison(str(store.root), ids, stamp(members))
    result, charts = drawn["result"], drawn["charts"]
    finished, done = result["finished"], result["finished"] == len(members)
    if not done:
        st.progress(finished / len(members), text=f"{finished}/{len(members)} runs finished")
    if charts["curves"] is not None:
        charts_with_svg(charts["curves"], "max-vs-avg-curves", "compare.svg.curves")
    st.info(result["verdict"])
    if result["summary"].empty:
        return done
    left, right = st.columns(2)
    chart_with_svg(charts["seeds"], "max-vs-avg-accuracy", "compare.svg.seeds", left)
    summary = result["summary"].set_index("pooling")
    for pool in summary.index:
        right.metric(
            f"{pool} pooling: test accuracy",
            f"{100 * summary.loc[pool, 'mean']:.2f} % ± {100 * summary.loc[pool, 'std']:.2f} points",
            help=f"mean ± standard deviation over {summary.loc[pool, 'n']} seed(s)",
        )
        right.caption(epoch_time_text(summary.loc[pool]), help=EPOCH_TIME_HOW)
    if "per_class" in charts:
        st.markdown("**Per-class accuracy, max − avg** (points, mean over seeds)")
        st.altair_chart(charts["per_class"], width="stretch")
    for col, pool in zip(st.columns(2), ("max", "avg"), strict=True):
        if pool in charts:
            col.altair_chart(charts[pool])
    return done


def epoch_time_text(row) -> str:
    """'0.61 s per epoch · 5,900 images/s': the time and the speed it means, from the same measurement."""
    text = f"{row['seconds_per_epoch']:.2f} s per epoch"
    speed = row.get("images_per_s")
    return text + (f" · {speed:,.0f} images/s" if speed == speed and speed else "")
