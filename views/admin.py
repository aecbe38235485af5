"""Admin: the whole queue in the order it will start (reorder, cancel), where runs train (this machine or a Ray
cluster), everyone's use against their share, and every run with its owner. Listed only for administrators
(``CNN_LAB_ADMINS``, or the local owner)."""

import os

import pandas as pd
import streamlit as st

from cnn_core.errors import CnnLabError
from cnn_core.jobs.bridge import chosen_address, run_resources, set_address
from cnn_core.jobs.quotas import limits, usage
from cnn_core.people import owner_label
from cnn_core.runs import ACTIVE, Status
from ui.identity import person
from ui.resources import job_manager_or_stop

st.title("🛡️ Admin")
manager = job_manager_or_stop()
store = manager.store
me = person()
if not me.admin:  # the page is not listed for others; a stale link still gets nothing
    st.error("This page is for administrators (CNN_LAB_ADMINS).")
    st.stop()


def act(run_id: str, what: str) -> None:
    """A queue button's callback: move a run to the front or the back, or cancel it."""
    try:
        if what == "cancel":
            manager.stop(run_id, by=me)
        else:
            manager.move(run_id, first=what == "first", by=me)
    except CnnLabError as err:
        st.session_state["admin.refused"] = str(err)


@st.fragment(run_every=2.0 if store.list(status=ACTIVE) else None)  # polls only while something is active
def queue() -> None:
    """Running runs, then the queue in the fair order it starts in."""
    if "admin.refused" in st.session_state:
        st.error(st.session_state.pop("admin.refused"))
    running = store.list(status=(Status.RUNNING,))
    waiting = manager.queue()
    st.caption(
        f"{len(running)} running (at most {manager.capacity()} at once), {len(waiting)} queued: round-robin "
        "across people, so one person's many runs never hold back another's one."
    )
    for run in running:
        c1, c2 = st.columns([5, 1])
        c1.markdown(f"▶ **{run.label}** · {owner_label(run.owner)} · {run.dataset} · {run.epochs} epoch(s)")
        c2.button("Stop", key=f"admin.stop.{run.id}", on_click=act, args=(run.id, "cancel"))
    for n, run in enumerate(waiting, start=1):
        c1, c2, c3, c4 = st.columns([5, 1, 1, 1])
        c1.markdown(f"{n}. **{run.label}** · {owner_label(run.owner)} · {run.dataset} · {run.epochs} epoch(s)")
        c2.button("Start next", key=f"admin.first.{run.id}", on_click=act, args=(run.id, "first"), disabled=n == 1)
        c3.button("Move to back", key=f"admin.last.{run.id}", on_click=act, args=(run.id, "last"))
        c4.button("Cancel", key=f"admin.cancel.{run.id}", on_click=act, args=(run.id, "cancel"))
    if not running and not waiting:
        st.info("Nothing is running or queued.")


st.subheader("Queue")
queue()

st.subheader("Where runs train")


def choose_cluster(address: str | None) -> None:
    """The cluster form's callback: send every run from now on to ``address``, or back to this machine."""
    try:
        set_address(store, address, by=me)
    except CnnLabError as err:
        st.session_state["admin.cluster_refused"] = str(err)


@st.fragment(run_every=2.0 if manager.address else None)  # the cluster's room changes as its runs come and go
def backend() -> None:
    bridge = manager.bridge
    if bridge is None:
        st.markdown(f"**This machine**: up to {manager.max_concurrent} run(s) at once on warm workers.")
    elif bridge.info is not None:
        info, (cpus, gpus) = bridge.info, run_resources()
        st.markdown(
            f"**The Ray cluster at `{manager.address}`**: {len(info['nodes'])} node(s), {info['cpus']:g} CPUs, "
            f"{info['gpus']:g} GPUs; room for {bridge.slots} more run(s) now (each asks for {cpus:g} CPU"
            f"{f' and {gpus:g} GPU' if info['gpus'] else ''})."
        )
    elif bridge.error:
        st.error(f"Runs wait in the queue: {bridge.error}")
    else:
        st.info(f"Joining the Ray cluster at `{manager.address}`…")


backend()
if "admin.cluster_refused" in st.session_state:
    st.error(st.session_state.pop("admin.cluster_refused"))
chosen = chosen_address(store)
with st.form("admin.cluster"):
    address = st.text_input(
        "Ray cluster address",
        key="admin.cluster_address",
        value=chosen or "",
        placeholder="HOST:PORT, as `ray start --head` printed it",
        help="Every run from Train, Compare and `cnn-lab train` goes there from now on (runs already training go "
        "on where they are). Empty: this machine"
        + (f", or RAY_ADDRESS ({os.environ['RAY_ADDRESS']})" if os.environ.get("RAY_ADDRESS") else "")
        + ".",
    )
    if st.form_submit_button("Send runs there"):
        choose_cluster(address)
        st.rerun()

st.subheader("People")
try:
    q = limits()
except CnnLabError as err:
    st.error(str(err))
    st.stop()
runs = store.list()
owners = sorted({r.owner for r in runs} | {s.owner for s in store.sweeps.list()})
if owners:
    frame = pd.DataFrame([{"person": owner_label(o), **usage(store, o)} for o in owners])
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "runs": st.column_config.ProgressColumn(f"runs active (of {q.runs})", min_value=0, max_value=q.runs),
            "sweeps": st.column_config.NumberColumn(f"sweeps active (of {q.sweeps})"),
            "run_mb": st.column_config.ProgressColumn(
                f"run disk MB (of {q.run_disk_mb:,})", min_value=0, max_value=q.run_disk_mb, format="%.0f"
            ),
            "dataset_mb": st.column_config.ProgressColumn(
                f"dataset disk MB (of {q.dataset_disk_mb:,})", min_value=0, max_value=q.dataset_disk_mb, format="%.0f"
            ),
        },
    )
    st.caption("Limits apply to people who sign in; administrators and the local owner have none.")

st.subheader("Every run")
st.dataframe(
    pd.DataFrame(
        [
            {
                "name": r.label,
                "owner": owner_label(r.owner),
                "shared": r.shared,
                "status": r.status.value,
                "dataset": r.dataset,
                "test_accuracy": r.test_accuracy,
                "id": r.id,
            }
            for r in runs
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={"test_accuracy": st.column_config.NumberColumn(format="percent")},
)
