"""Compare: max vs average pooling over several seeds, any runs side by side, and run management."""

import time
from dataclasses import replace

import streamlit as st

from cnn_core.charts import confusion_chart, curves_chart, per_class_chart, seed_points_chart
from cnn_core.compare import (
    config_diff,
    curves,
    load_predictions,
    metric_summary,
    pooling_comparison,
    pooling_pair,
    summed_confusion,
)
from cnn_core.config import RunConfig
from cnn_core.errors import CnnLabError
from ui.charts import chart_with_svg
from ui.resources import job_manager_or_stop

st.title("⚖️ Compare")
manager = job_manager_or_stop()
store = manager.store
rows = store.list()
by_id = {r.id: r for r in rows}

st.header("Max vs average pooling")
current = st.session_state.get("train.current_config")
run = RunConfig.from_json(current) if current else RunConfig()
dataset = st.session_state.get("train.current_dataset", "mnist")
st.caption(
    (
        "Uses the current Train page config"
        if current
        else "Uses the default LeNet-5 recipe (set your own on the Train page)"
    )
    + f" on **{dataset}**. Each pair differs "
    "only in pooling and shares its seed: same initial weights, same data order, same augmentation."
)
c1, c2 = st.columns([2, 1])
n_seeds = c1.slider("seeds", 1, 5, 3, key="compare.seeds")
epochs = c2.number_input("epochs", 1, 100, run.train.epochs, key="compare.epochs")
no_pooling = all(b.pool == "none" for b in run.model.conv)
if no_pooling:
    st.warning("This config has no pooling layer: pick max or avg pooling for a conv block on the Train page.")
if st.button("Launch max vs avg", type="primary", disabled=no_pooling, key="compare.launch"):
    group = "pool-" + time.strftime("%Y%m%d-%H%M%S")
    base = replace(run, train=replace(run.train, epochs=int(epochs)))
    for seed in range(base.train.seed, base.train.seed + n_seeds):
        for pool in ("max", "avg"):
            manager.submit(pooling_pair(base, pool, seed), dataset=dataset, name=f"{pool}-seed{seed}", group_id=group)
    st.session_state["compare.pick"] = group
    st.rerun()  # the run list above was read before these runs existed

groups = sorted({r.group_id for r in rows if (r.group_id or "").startswith("pool-")}, reverse=True)
if groups:
    if st.session_state.get("compare.pick") not in groups:
        st.session_state.pop("compare.pick", None)
    group = st.selectbox("comparison", groups, key="compare.pick")
    members = [r.id for r in rows if r.group_id == group]
    group_active = any(by_id[i].status.active for i in members)

    @st.fragment(run_every=1.0 if group_active else None)
    def pooling_view() -> None:
        states = [store.get(i).status for i in members]
        done = sum(s.finished for s in states)
        if done < len(states):
            st.progress(done / len(states), text=f"{done}/{len(states)} runs finished")
        long = curves(store, members)
        if not long.empty:
            chart_with_svg(curves_chart(long, color="pooling"), "max-vs-avg-curves", "compare.svg.curves")
        result = pooling_comparison(store, members)
        st.info(result["verdict"])
        if not result["summary"].empty:
            left, right = st.columns(2)
            chart_with_svg(
                seed_points_chart(result["runs"], result["summary"]), "max-vs-avg-accuracy", "compare.svg.seeds", left
            )
            summary = result["summary"].set_index("pooling")
            for pool in summary.index:
                right.metric(
                    f"{pool} pooling: test accuracy",
                    f"{summary.loc[pool, 'mean']:.2%} ± {summary.loc[pool, 'std']:.2%}",
                    help=f"{summary.loc[pool, 'n']} seed(s)",
                )
                right.caption(f"{summary.loc[pool, 'seconds_per_epoch']:.2f} s per epoch")
            if not result["per_class"].empty:
                st.markdown("**Per-class accuracy, max − avg** (points, mean over seeds)")
                st.altair_chart(per_class_chart(result["per_class"], "max − avg (points)"), width="stretch")
            matrices = st.columns(2)
            for col, pool in zip(matrices, ("max", "avg"), strict=True):
                preds = [
                    load_predictions(store, r) for r in result["runs"].loc[result["runs"]["pooling"] == pool, "run"]
                ]
                preds = [p for p in preds if p]
                if preds:
                    counts = summed_confusion(preds)
                    col.altair_chart(confusion_chart(counts, preds[0]["classes"], f"{pool} pooling (all seeds)"))
        if group_active and done == len(states):
            st.rerun()

    pooling_view()

st.header("Compare any runs")
picked = st.multiselect(
    "runs",
    list(by_id),
    format_func=lambda i: f"{by_id[i].label} · {i[-6:]} ({by_id[i].status})",
    key="compare.runs",
)
if picked:
    smoothing = st.slider(
        "smoothing",
        0.0,
        0.95,
        0.0,
        0.05,
        key="compare.smoothing",
        help="exponential moving average drawn over the faint raw curve",
    )
    long = curves(store, picked)
    if long.empty:
        st.info("These runs have no finished epochs yet.")
    else:
        chart_with_svg(curves_chart(long, smoothing=smoothing), "run-curves", "compare.svg.runs")
        st.markdown("**Best, final and minimum per metric**")
        st.dataframe(metric_summary(long), hide_index=True, width="stretch")
    diff = config_diff([by_id[i] for i in picked])
    st.markdown("**Hyperparameters that differ**")
    if diff.empty:
        st.caption("None: these runs share every hyperparameter.")
    else:
        st.dataframe(diff, hide_index=True, width="stretch")

st.header("Manage runs")
if not rows:
    st.info("No runs yet.")
else:
    target = st.selectbox("run", list(by_id), format_func=lambda i: f"{by_id[i].label} ({i})", key="compare.manage")
    c1, c2 = st.columns(2)
    new_name = c1.text_input("new name", by_id[target].name, key=f"compare.rename.{target}")
    if c1.button("Rename", key="compare.rename"):
        try:
            store.rename(target, new_name)
            st.rerun()
        except CnnLabError as err:
            c1.error(str(err))
    sure = c2.checkbox("yes, delete this run and its checkpoints", key=f"compare.sure.{target}")
    if c2.button("Delete", disabled=not sure, key="compare.delete"):
        try:
            store.delete(target)
            st.rerun()
        except CnnLabError as err:
            c2.error(str(err))
