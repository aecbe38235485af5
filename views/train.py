"""Train: set hyperparameters, see every layer's shape before training, launch runs and watch them live."""

import pandas as pd
import streamlit as st

from cnn_core.compare import curves
from cnn_core.errors import CnnLabError
from cnn_core.people import owner_label
from cnn_core.runs import ACTIVE, Run
from ui.charts import charts_with_svg, curves_charts  # built once per frame, shared by sessions
from ui.code_export import show_code
from ui.config_form import Draft, config_controls
from ui.identity import person
from ui.layer_preview import show_layers
from ui.live_polling import poll_every, starting
from ui.resources import job_manager_or_stop
from ui.run_picker import pick_run, select
from ui.run_results import ended_text, show_results

st.title("🏋️ Train")
manager = job_manager_or_stop()
store = manager.store
me = person()
if st.session_state.pop("train.go_explain", False):  # a mistake's "Explain" button was pressed
    st.switch_page("views/explain.py")


def launch(draft: Draft) -> None:
    """The Launch button's callback: queue the run, show it below by name, clear the name field."""
    try:
        run_id = manager.submit(
            draft.run, dataset=draft.dataset, name=st.session_state.get("train.name") or None, owner=me
        )
    except CnnLabError as err:
        st.session_state["train.launched"] = ("error", str(err))
        return
    select("train.pick", run_id)
    st.session_state["train.launched"] = ("success", f"Queued **{store.get(run_id).label}**: it is shown below.")
    st.session_state["train.name"] = ""


def resume(run_id: str) -> None:
    """The Resume button's callback: queue the run again, to go on after its last saved epoch."""
    try:
        epoch = manager.resume(run_id, by=me)
    except CnnLabError as err:
        st.session_state["train.launched"] = ("error", str(err))
        return
    st.session_state["train.launched"] = ("success", f"Resumed: it goes on after epoch {epoch}.")


controls, preview = st.columns([1, 1.2], gap="large")
with controls:
    draft = config_controls()
    st.session_state["train.current_config"] = draft.run.to_json() if draft.run else None  # Compare launches it
    st.session_state["train.current_dataset"] = draft.dataset

with preview:
    st.subheader("Layers before training")
    problem = show_layers(draft)
    st.text_input("run name (optional)", key="train.name")
    st.button(
        "🚀 Launch training",
        type="primary",
        disabled=problem is not None,
        key="train.launch",
        on_click=launch,
        args=(draft,),
        help=problem,
    )
    if "train.launched" in st.session_state:
        kind, message = st.session_state.pop("train.launched")
        getattr(st, kind)(message)

show_code(draft.run, draft.dataset)  # full width: a script is wider than the controls' column


def run_label(run: Run) -> str:
    acc = f" · {run.test_accuracy:.2%}" if run.test_accuracy is not None else ""
    whose = "" if run.owner == me.id else f" · {owner_label(run.owner)}"
    return f"{run.label} · {run.id[-6:]} · {ended_text(run) or run.status}{acc}{whose}"  # ids keep equal names apart


def live_view(run_id: str) -> None:
    """Progress, curves and the stop button of one run, read from the store."""
    run = store.get(run_id, visible_to=me)
    last = store.last_metric(run_id)
    if run.status.active:
        if last:
            done = last["step"] / max(last["total_steps"] or 1, 1)
            left = last["elapsed"] * (1 - done) / max(done, 1e-9)
            text = (
                f"epoch {last['epoch']}/{run.epochs} · {last['images_per_s']:,.0f} images/s · about {left:,.0f} s left"
            )
            st.progress(min(done, 1.0), text=text)
        elif (wait := manager.wait_of(run_id)) is not None:
            st.progress(0.0, text=f"queued: {wait.text}")
        else:
            st.progress(0.0, text=f"{run.status}: waiting for the first steps…")
        if me.may_change(run.owner) and st.button("⏹ Stop", key=f"train.stop.{run_id}"):
            manager.stop(run_id, by=me)
    if run.resumable and me.may_change(run.owner):
        st.button(
            f"▶ Resume from epoch {run.epochs_done}",
            key=f"train.resume.{run_id}",
            on_click=resume,
            args=(run_id,),
            help="Go on from the last saved epoch with its optimizer, schedule and random state: the same result "
            "as a run that was never stopped.",
        )
    long = curves(store, [run_id], "epoch")
    if not long.empty:
        charts_with_svg(curves_charts(long, color="metric"), f"{run.label}-curves", f"train.svg.{run_id}")
    elif run.status.active:
        steps = curves(store, [run_id], "step")
        if not steps.empty:
            charts_with_svg(
                curves_charts(steps, color="metric", x="step"), f"{run.label}-steps", f"train.svgs.{run_id}"
            )


st.divider()
st.subheader("Runs")
runs = store.list(visible_to=me)
if not runs:
    st.info("No runs yet: set the hyperparameters above and launch one.")
    st.stop()
selected = pick_run("run", runs, "train.pick", run_label)
active_now = {r.id for r in runs if r.status.active}


def polling() -> float | None:
    return poll_every(selected, active_now, selected in active_now and starting(manager, selected))


every = polling()


@st.fragment(run_every=every)
def live() -> None:
    if selected in active_now:  # a finished run's view does not change: drawn once below, not every second
        live_view(selected)
    if active_now and ({r.id for r in store.list(status=ACTIVE, visible_to=me)} != active_now or polling() != every):
        st.rerun()  # a run started or ended, or its first point came: redraw the page and set its polling again


live()
if selected not in active_now:
    live_view(selected)
show_results(store, store.get(selected, visible_to=me))
st.dataframe(
    pd.DataFrame(
        [
            {
                "name": r.label,
                "status": ended_text(r) or r.status.value,
                "test_accuracy": r.test_accuracy,
                "device": r.where,
                **({"owner": owner_label(r.owner)} if any(r.owner != me.id for r in runs) else {}),
                "id": r.id,
            }
            for r in runs
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={"test_accuracy": st.column_config.NumberColumn(format="percent")},
)
