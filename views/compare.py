"""Compare: max vs average pooling over several seeds, any runs side by side, and run management.

A control reruns the whole page, so what the charts show is computed once per state of their runs and
shared (ui.pooling_view): a rerun where nothing changed reads the run list and sends the charts again.
(Fragments would rerun less, but a slider or a multiselect inside one lost keystrokes in Chromium.)"""

import time
from dataclasses import replace

import streamlit as st

from cnn_core.charts import curves_charts
from cnn_core.compare import comparison_title, config_diff, metric_summary, pooling_pair
from cnn_core.config import RunConfig
from cnn_core.errors import CnnLabError
from cnn_core.people import owner_label
from cnn_core.runs import Run
from ui.charts import charts_with_svg
from ui.identity import person
from ui.invariance_view import invariance_section
from ui.pooling_view import pooling_view, run_curves, stamp
from ui.resources import job_manager_or_stop
from ui.run_picker import pick_run, pick_runs, select

st.title("⚖️ Compare")
manager = job_manager_or_stop()
store = manager.store
me = person()


def launch_controls() -> None:
    """Seeds, epochs and the launch of a max-vs-average comparison of the Train page's config."""
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
                        pooling_pair(base, pool, seed),
                        dataset=dataset,
                        name=f"{pool}-seed{seed}",
                        group_id=group,
                        owner=me,
                    )
        except CnnLabError as err:
            st.error(str(err))
        else:
            st.session_state["compare.pick"] = group
            st.rerun()  # the whole page: the new comparison is drawn below


def comparisons(rows: list[Run]) -> dict[str, list[Run]]:
    members_of: dict[str, list[Run]] = {}
    for r in rows:
        if (r.group_id or "").startswith("pool-"):
            members_of.setdefault(r.group_id, []).append(r)
    return members_of


def group_label(members: list[Run]) -> str:
    started = time.strftime("%d %b %H:%M", time.strptime(members[0].group_id[5:], "%Y%m%d-%H%M%S"))
    return f"{comparison_title(members)} · {started}"


def any_runs() -> None:
    """Any runs overlaid, their best and final values, and the hyperparameters that differ."""
    rows = store.list(visible_to=me)
    picked = pick_runs("runs", rows, "compare.runs", lambda r: f"{r.label} · {r.id[-6:]} ({r.status})")
    if not picked:
        return
    help_text = "exponential moving average drawn over the faint raw curve"
    smoothing = st.slider("smoothing", 0.0, 0.95, 0.0, 0.05, key="compare.smoothing", help=help_text)
    chosen = [r for r in rows if r.id in picked]
    long = run_curves(str(store.root), tuple(picked), stamp(chosen))
    if long.empty:
        st.info("These runs have no finished epochs yet.")
    else:
        charts_with_svg(curves_charts(long, smoothing=smoothing), "run-curves", "compare.svg.runs")
        st.markdown("**Best and final value per metric**")
        st.dataframe(metric_summary(long), hide_index=True, width="stretch")
    diff = config_diff(chosen)
    st.markdown("**Hyperparameters that differ**")
    if diff.empty:
        st.caption("None: these runs share every hyperparameter.")
    else:
        st.dataframe(diff, hide_index=True, width="stretch")


def rename(target: str) -> None:
    """The Rename button's callback: rename, keep the run selected under its new name, say what changed."""
    old = store.get(target, visible_to=me).label
    try:
        new = store.rename(target, st.session_state[f"compare.rename.{target}"], by=me)
    except CnnLabError as err:
        st.session_state["compare.renamed"] = ("error", str(err))
        return
    select("compare.manage", target)
    st.session_state["compare.renamed"] = ("success", f"Renamed “{old}” to “{store.get(target, visible_to=me).label}”.")
    st.session_state[f"compare.rename.{target}"] = new


def share(target: str) -> None:
    """The "shared with everyone" toggle's callback."""
    try:
        store.share(target, st.session_state[f"compare.share.{target}"], by=me)
    except CnnLabError as err:
        st.session_state["compare.renamed"] = ("error", str(err))


def manage_label(run: Run) -> str:
    whose = "" if run.owner == me.id else f" · {owner_label(run.owner)}"
    return f"{run.label} ({run.id}){' · shared' if run.shared else ''}{whose}"


def manage_runs() -> None:
    """Rename, share or delete one of your runs (administrators: anyone's). A deletion redraws the whole page:
    its run leaves every picker."""
    rows = [r for r in store.list(visible_to=me) if me.may_change(r.owner)]
    if "compare.deleted" in st.session_state:
        st.success(st.session_state.pop("compare.deleted"))
    if not rows:
        st.info("No runs yet.")
        return
    target = pick_run("run", rows, "compare.manage", manage_label)
    label = next(r.label for r in rows if r.id == target)
    c1, c2 = st.columns(2)
    c1.text_input("new name", next(r.name for r in rows if r.id == target), key=f"compare.rename.{target}")
    c1.button("Rename", key="compare.rename", on_click=rename, args=(target,))
    c1.toggle(
        "shared with everyone",
        next(r.shared for r in rows if r.id == target),
        key=f"compare.share.{target}",
        on_change=share,
        args=(target,),
        help="Everyone signed in sees a shared run (a reference run for a class); only you and administrators "
        "change it.",
    )
    if "compare.renamed" in st.session_state:
        kind, message = st.session_state.pop("compare.renamed")
        getattr(c1, kind)(message)
    sure = c2.checkbox(f"yes, delete “{label}” and its checkpoints", key=f"compare.sure.{target}")
    if c2.button("Delete", disabled=not sure, key="compare.delete"):
        try:
            store.delete(target, by=me)
        except CnnLabError as err:
            c2.error(str(err))
        else:  # said above the picker, which now shows another run
            st.session_state["compare.deleted"] = f"Deleted “{label}” ({target}) and its checkpoints."
            st.rerun()


st.header("Max vs average pooling")
launch_controls()
rows = store.list(visible_to=me)
members_of = comparisons(rows)
group = None
if members_of:
    if st.session_state.get("compare.pick") not in members_of:
        st.session_state.pop("compare.pick", None)
    labels = {g: group_label(m) for g, m in members_of.items()}
    group = st.selectbox("comparison", sorted(members_of, reverse=True), format_func=labels.get, key="compare.pick")
    group_active = any(r.status.active for r in members_of[group])

    @st.fragment(run_every=1.0 if group_active else None)
    def live_comparison() -> None:
        members = store.list(group=group, visible_to=me)
        if pooling_view(store, members) and group_active:
            st.rerun()  # all finished: redraw once, which also stops the polling

    live_comparison()

invariance_section(members_of[group] if group else None, rows)
st.header("Compare any runs")
any_runs()
st.header("Manage runs")
manage_runs()
