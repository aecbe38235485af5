"""Sweep: many runs at once on Ray Tune (here or on a cluster), every trial an ordinary run."""

import streamlit as st

from cnn_core.config import RunConfig
from cnn_core.errors import CnnLabError
from cnn_core.people import owner_label
from cnn_core.runs import Sweep, SweepStatus
from cnn_core.sweeps import results
from ui.identity import person
from ui.resources import job_manager_or_stop
from ui.run_picker import pick_one
from ui.sweep_form import sweep_controls
from ui.sweep_results import analysis, trial_table

st.title("🧪 Sweep")
manager = job_manager_or_stop()
store = manager.store
me = person()
if "sweep.go" in st.session_state:  # a "open the best trial" link was pressed
    st.switch_page(st.session_state.pop("sweep.go"))

current = st.session_state.get("train.current_config")
base = RunConfig.from_json(current) if current else RunConfig()
dataset = st.session_state.get("train.current_dataset", "mnist")
st.caption(
    f"{'The current Train page config' if current else 'The default LeNet-5 recipe (set yours on Train)'} on "
    f"**{dataset}**, with the parameters below varied. Each trial is an ordinary run: Compare, Filters and "
    "Explain open it like any other. Ray Tune runs the trials; on a cluster, set its address below."
)


def launch(draft) -> None:
    """The Launch button's callback: queue the sweep for its driver process and show it below."""
    try:
        sweep_id = manager.submit_sweep(draft.config, address=draft.address, storage=draft.storage, owner=me)
    except CnnLabError as err:
        st.session_state["sweep.launched"] = ("error", str(err), None)
        return
    st.session_state["sweep.pick"] = sweep_id
    st.session_state["sweep.launched"] = ("success", "Launched: its trials appear below as they start.", sweep_id)


sweeps = store.sweeps.list(visible_to=me)  # read after the Launch callback: a sweep it queued is in the list
with st.expander("New sweep", expanded=not sweeps):
    draft = sweep_controls(base, dataset)
    if draft.config is None and draft.hint:
        st.info(draft.hint)
    elif draft.config is None:
        st.error(draft.error)
    else:
        config = draft.config
        optuna = config.search == "optuna"
        sampled = " (drawn as Optuna learns; an invalid draw is listed, not trained)" if optuna else ""
        st.markdown(
            f"**{config.trial_count - len(draft.invalid) * len(config.seeds)} trials** "
            f"({len(config.seeds)} seed(s) each){sampled}"
            + (f", **{len(draft.invalid)} invalid configuration(s) skipped**:" if draft.invalid else "")
        )
        if draft.invalid:
            st.dataframe(results.invalid_frame(draft.invalid), hide_index=True, width="stretch")
    st.button(
        "🚀 Launch sweep",
        type="primary",
        key="sweep.launch",
        disabled=draft.config is None,
        on_click=launch,
        args=(draft,),
    )
    if "sweep.launched" in st.session_state:
        # an error shows once; the launch note stays while that sweep is queued or running (its start redraws
        # the page, which would otherwise wipe a note shown once)
        kind, message, launched = st.session_state["sweep.launched"]
        running = any(s.id == launched and s.status.active for s in sweeps)
        if running or launched is None:
            getattr(st, kind)(message)
        if not running:
            del st.session_state["sweep.launched"]

if not sweeps:
    st.info("No sweeps yet: pick what to vary above (or the preset) and launch one.")
    st.stop()


def sweep_label(sweep: Sweep) -> str:
    where = f" · {sweep.address}" if sweep.address else ""
    whose = "" if sweep.owner == me.id else f" · {owner_label(sweep.owner)}"
    return f"{sweep.label} · {sweep.id[-6:]} · {sweep.status}{where}{whose}"


def act(what, sweep_id: str) -> None:
    """A Stop, Resume or share callback: a refusal (not yours, over your share) is one line on the page."""
    try:
        what(sweep_id)
    except CnnLabError as err:
        st.session_state["sweep.refused"] = str(err)


picked = pick_one("sweep", [s.id for s in sweeps], [sweep_label(s) for s in sweeps], "sweep.pick")
sweep = store.sweeps.get(picked, visible_to=me)
mine = me.may_change(sweep.owner)
if "sweep.refused" in st.session_state:
    st.error(st.session_state.pop("sweep.refused"))
if mine:
    st.toggle(
        "shared with everyone (the sweep and its trials)",
        sweep.shared,
        key=f"sweep.share.{picked}",
        on_change=act,
        args=(lambda s: store.sweeps.share(s, st.session_state[f"sweep.share.{s}"], by=me), picked),
    )


@st.fragment(run_every=1.0 if sweep.status.active else None)
def live() -> None:
    """The trials while the sweep runs; polling stops once it has ended (the page redraws once)."""
    now = store.sweeps.get(picked, visible_to=me)
    if mine and now.status.active and st.button("⏹ Stop sweep", key=f"sweep.stop.{picked}"):
        manager.stop_sweep(picked, by=me)
    trial_table(store, now)
    if now.status != sweep.status:
        st.rerun()  # started or ended: redraw the whole page, which also stops or starts the polling


st.subheader("Trials")
live()
if sweep.status in (SweepStatus.INTERRUPTED, SweepStatus.FAILED, SweepStatus.STOPPED):
    st.warning(f"This sweep is {sweep.status}: {sweep.error or 'its driver stopped'}")
    if mine:
        st.button(
            "▶ Resume",
            key=f"sweep.resume.{picked}",
            on_click=act,
            args=(lambda s: manager.resume_sweep(s, by=me), picked),
        )
if sweep.invalid:
    with st.expander(f"{len(sweep.invalid)} invalid configuration(s), skipped"):
        st.dataframe(results.invalid_frame(sweep.invalid), hide_index=True)
if not sweep.status.active:
    st.subheader("Results")
    analysis(store, sweep)
