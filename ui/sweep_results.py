"""A sweep's trials while it runs (table, best so far) and afterwards (parallel coordinates, mean ± std per
parameter, importance, the best trial with links to Compare, Filters and Explain)."""

import streamlit as st

from cnn_core.charts import sweeps as charts
from cnn_core.explain.filters import run_label
from cnn_core.runs import RunStore, Sweep
from cnn_core.sweeps import results
from ui.charts import chart_with_svg

PAGES = {"compare": "views/compare.py", "filters": "views/filters.py", "explain": "views/explain.py"}


def trial_table(store: RunStore, sweep: Sweep) -> None:
    """Status, the varied parameters, epochs and accuracies of every trial so far, and the best so far."""
    frame = results.trial_frame(store, sweep.id)
    if frame.empty:
        st.info("No trial has started yet: Ray is starting (a few seconds), then the first trials appear here.")
        return
    counts = frame["status"].value_counts().to_dict()
    st.caption(" · ".join(f"{n} {status}" for status, n in counts.items()) + f" of {sweep.config.trial_count}")
    shown = ["status", *results.varied(store, sweep.id), "seed", "epochs", "val_accuracy", "test_accuracy"]
    st.dataframe(
        results.in_words(frame[[c for c in shown if c in frame]]),
        hide_index=True,
        width="stretch",
        column_config={
            "val_accuracy": st.column_config.NumberColumn(format="percent"),
            "test_accuracy": st.column_config.NumberColumn(format="percent"),
        },
    )
    if frame["val_accuracy"].notna().any():
        st.altair_chart(charts.best_so_far_chart(frame), width="stretch")


def analysis(store: RunStore, sweep: Sweep) -> None:
    """The charts of a sweep's finished trials and the best one."""
    frame = results.trial_frame(store, sweep.id)
    paths = results.varied(store, sweep.id)
    if frame.empty or not (frame["status"] == "completed").any():
        st.info("No trial has completed yet: the charts appear when one has.")
        return
    chart_with_svg(charts.parallel_coordinates(frame, paths), f"{sweep.id}-parallel", f"sweep.svg.pc.{sweep.id}")
    columns = st.columns(len(paths))
    for column, path in zip(columns, paths, strict=True):
        table = results.mean_std(frame, path)
        if not table.empty:
            column.altair_chart(charts.mean_std_chart(table, path), width="stretch")
    weights = results.importance(frame, paths + ["seed"])
    if not weights.empty:
        st.altair_chart(charts.importance_chart(weights), width="stretch")
        st.caption(
            "Importance: Optuna's `get_param_importances` (fANOVA) over the completed trials; the seed is "
            "included as a parameter, so a seed that matters as much as a setting says the difference is noise."
        )
    best = results.best_trial(frame)
    if best is not None:
        val, test = best["val_accuracy"], best["test_accuracy"]
        st.success(f"Best trial: **{best['name']}** · validation {val:.2%} · test {test:.2%}")
        run = store.get(best["run_id"])
        others = frame.sort_values("val_accuracy", ascending=False)["run_id"].head(4).tolist()
        c1, c2, c3 = st.columns(3)
        c1.button("Open on Compare", key="sweep.open.compare", on_click=_open, args=("compare", run, others))
        c2.button("Open on Filters", key="sweep.open.filters", on_click=_open, args=("filters", run, others))
        c3.button("Open on Explain", key="sweep.open.explain", on_click=_open, args=("explain", run, others))


def _open(page: str, run, others: list[str]) -> None:
    """A link's callback: choose the run in the other page's picker, then go there (on this page's rerun)."""
    if page == "compare":
        st.session_state["compare.runs"] = others  # the best and the next ones, side by side
    else:
        st.session_state[f"{page}.model"] = run_label(run)
    st.session_state["sweep.go"] = PAGES[page]
