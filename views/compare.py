"""Compare: max vs average pooling over several seeds, any runs side by side, and run management."""

import time
from dataclasses import replace

import streamlit as st

from cnn_core.charts import confusion_chart, curves_charts, per_class_chart, seed_points_chart
from cnn_core.compare import (
    EPOCH_TIME_HOW,
    comparison_title,
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
from ui.charts import chart_with_svg, charts_with_svg
from ui.invariance_view import invariance_section
from ui.resources import job_manager_or_stop
from ui.run_picker import pick_run, pick_runs, select

st.title("⚖️ Compare")
manager = job_manager_or_stop()
store = manager.store
rows = store.list()
by_id = {r.id: r for r in rows}

st.header("Max vs average pooling")
current = st.session_state.get("train.current_config")
run = RunConfig.from_json(current) if current else RunConfig()
dataset = st.session_state.get("train.current_dataset", "mnist")
source = "Uses the current Train page config" if current else "Uses the default LeNet-5 recipe (set yours on Train)"
st.caption(
    f"{source} on **{dataset}**. Each pair differs only in pooling and shares its seed: same initial weights, "
    "same data order, same augmentation."
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
    try:
        for seed in range(base.train.seed, base.train.seed + n_seeds):
            for pool in ("max", "avg"):
                manager.submit(
                    pooling_pair(base, pool, seed), dataset=dataset, name=f"{pool}-seed{seed}", group_id=group
                )
    except CnnLabError as err:
        st.error(str(err))
    else:
        st.session_state["compare.pick"] = group
        st.rerun()  # the run list above was read before these runs existed

members_of = {}
for r in rows:
    if (r.group_id or "").startswith("pool-"):
        members_of.setdefault(r.group_id, []).append(r)


def group_label(group: str) -> str:
    started = time.strftime("%d %b %H:%M", time.strptime(group[5:], "%Y%m%d-%H%M%S"))
    return f"{comparison_title(members_of[group])} · {started}"


def pooling_view(members: list[str]) -> bool:
    """Draw the comparison; True once every run of it has finished."""
    result = pooling_comparison(store, members)
    finished, done = result["finished"], result["finished"] == len(members)
    if not done:
        st.progress(finished / len(members), text=f"{finished}/{len(members)} runs finished")
    long = curves(store, members)
    if not long.empty:
        charts_with_svg(curves_charts(long, color="pooling"), "max-vs-avg-curves", "compare.svg.curves")
    st.info(result["verdict"])
    if result["summary"].empty:
        return done
    left, right = st.columns(2)
    chart_with_svg(
        seed_points_chart(result["runs"], result["summary"]), "max-vs-avg-accuracy", "compare.svg.seeds", left
    )
    summary = result["summary"].set_index("pooling")
    for pool in summary.index:
        right.metric(
            f"{pool} pooling: test accuracy",
            f"{100 * summary.loc[pool, 'mean']:.2f} % ± {100 * summary.loc[pool, 'std']:.2f} points",
            help=f"mean ± standard deviation over {summary.loc[pool, 'n']} seed(s)",
        )
        right.caption(f"{summary.loc[pool, 'seconds_per_epoch']:.2f} s per epoch", help=EPOCH_TIME_HOW)
    if not result["per_class"].empty:
        st.markdown("**Per-class accuracy, max − avg** (points, mean over seeds)")
        st.altair_chart(per_class_chart(result["per_class"], "max − avg (points)"), width="stretch")
    for col, pool in zip(st.columns(2), ("max", "avg"), strict=True):
        preds = [load_predictions(store, r) for r in result["runs"].loc[result["runs"]["pooling"] == pool, "run"]]
        preds = [p for p in preds if p]
        if preds:
            col.altair_chart(
                confusion_chart(summed_confusion(preds), preds[0]["classes"], f"{pool} pooling (all seeds)")
            )
    return done


if members_of:
    if st.session_state.get("compare.pick") not in members_of:
        st.session_state.pop("compare.pick", None)
    group = st.selectbox("comparison", sorted(members_of, reverse=True), format_func=group_label, key="compare.pick")
    ids = [r.id for r in members_of[group]]
    group_active = any(r.status.active for r in members_of[group])

    @st.fragment(run_every=1.0 if group_active else None)
    def live_comparison() -> None:
        if pooling_view(ids) and group_active:
            st.rerun()  # all finished: redraw once, which also stops the polling

    live_comparison()

invariance_section(members_of[group] if members_of else None, rows)

st.header("Compare any runs")
picked = pick_runs("runs", rows, "compare.runs", lambda r: f"{r.label} · {r.id[-6:]} ({r.status})")
if picked:
    help_text = "exponential moving average drawn over the faint raw curve"
    smoothing = st.slider("smoothing", 0.0, 0.95, 0.0, 0.05, key="compare.smoothing", help=help_text)
    long = curves(store, picked)
    if long.empty:
        st.info("These runs have no finished epochs yet.")
    else:
        charts_with_svg(curves_charts(long, smoothing=smoothing), "run-curves", "compare.svg.runs")
        st.markdown("**Best and final value per metric**")
        st.dataframe(metric_summary(long), hide_index=True, width="stretch")
    diff = config_diff([by_id[i] for i in picked])
    st.markdown("**Hyperparameters that differ**")
    if diff.empty:
        st.caption("None: these runs share every hyperparameter.")
    else:
        st.dataframe(diff, hide_index=True, width="stretch")


def rename(target: str) -> None:
    """The Rename button's callback: rename, keep the run selected under its new name, say what changed."""
    old = store.get(target).label
    try:
        new = store.rename(target, st.session_state[f"compare.rename.{target}"])
    except CnnLabError as err:
        st.session_state["compare.renamed"] = ("error", str(err))
        return
    select("compare.manage", target)
    st.session_state["compare.renamed"] = ("success", f"Renamed “{old}” to “{store.get(target).label}”.")
    st.session_state[f"compare.rename.{target}"] = new


st.header("Manage runs")
if "compare.deleted" in st.session_state:
    st.success(st.session_state.pop("compare.deleted"))
if not rows:
    st.info("No runs yet.")
else:
    target = pick_run("run", rows, "compare.manage", lambda r: f"{r.label} ({r.id})")
    c1, c2 = st.columns(2)
    c1.text_input("new name", by_id[target].name, key=f"compare.rename.{target}")
    c1.button("Rename", key="compare.rename", on_click=rename, args=(target,))
    if "compare.renamed" in st.session_state:
        kind, message = st.session_state.pop("compare.renamed")
        getattr(c1, kind)(message)
    label = by_id[target].label
    sure = c2.checkbox(f"yes, delete “{label}” and its checkpoints", key=f"compare.sure.{target}")
    if c2.button("Delete", disabled=not sure, key="compare.delete"):
        try:
            store.delete(target)
        except CnnLabError as err:
            c2.error(str(err))
        else:  # said above the picker, which now shows another run
            st.session_state["compare.deleted"] = f"Deleted “{label}” ({target}) and its checkpoints."
            st.rerun()
