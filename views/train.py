"""Train: set hyperparameters, see every layer's shape before training, launch runs and watch them live."""

import numpy as np
import pandas as pd
import streamlit as st

from cnn_core import budget
from cnn_core.budget import human_bytes
from cnn_core.charts import confusion_chart, curves_chart
from cnn_core.compare import confusion_matrix, curves, load_predictions
from cnn_core.errors import CnnLabError, OverBudget
from cnn_core.runs import ACTIVE, Run
from cnn_core.shapes import layer_table, total_macs, total_params
from ui.charts import chart_with_svg
from ui.config_form import config_controls
from ui.resources import job_manager_or_stop, test_images

st.title("🏋️ Train")
manager = job_manager_or_stop()
store = manager.store

controls, preview = st.columns([1, 1.2], gap="large")
with controls:
    run, problem, dataset = config_controls()
    st.session_state["train.current_config"] = run.to_json() if run else None  # the Compare page launches from it
    st.session_state["train.current_dataset"] = dataset

with preview:
    st.subheader("Layers before training")
    if problem:
        st.error(problem)
    else:
        layers = layer_table(run.model)
        table = pd.DataFrame(
            [
                {
                    "layer": l.name,
                    "type": l.type,
                    "output (C×H×W)": "×".join(map(str, l.output_shape)),
                    "params": l.params,
                    "MACs": l.macs,
                    "receptive field": l.receptive_field,
                    "stride fits": "—" if l.type in ("fc", "flatten") else ("yes" if l.fits else "NO"),
                }
                for l in layers
            ]
        )
        st.dataframe(table, hide_index=True, width="stretch")
        m1, m2, m3 = st.columns(3)
        m1.metric("parameters", f"{total_params(layers):,}")
        m2.metric("multiply-adds per image", f"{total_macs(layers):,}")
        try:
            cost = budget.check(run)
        except OverBudget as err:
            problem = str(err)  # Launch stays disabled, with this reason
            st.error(problem)
        else:
            m3.metric(
                "memory · disk",
                f"{human_bytes(cost.training_memory_bytes)} · {human_bytes(cost.checkpoint_disk_bytes)}",
                help=f"Estimated before training: {cost.describe()} (one batch forward + backward, weights, "
                "optimizer state; a checkpoint per epoch). Limits: CNN_LAB_MAX_MEMORY_MB, CNN_LAB_MAX_DISK_MB.",
            )
        st.markdown("**Output size** = (W − F + 2P) / S + 1")
        for l in layers:
            if l.type in ("conv", "pool"):
                mark = "✅" if l.fits else f"⚠️ stride does not fit: PyTorch drops the last {l.dropped} row(s)/column(s)"
                st.markdown(f"`{l.name}`: {l.formula} {mark}")
    name = st.text_input("run name (optional)", key="train.name")
    if st.button("🚀 Launch training", type="primary", disabled=problem is not None, key="train.launch"):
        try:
            run_id = manager.submit(run, dataset=dataset, name=name or None)
        except CnnLabError as err:
            st.error(str(err))
        else:
            st.session_state["train.pick"] = run_id  # show the new run below (set before its selectbox exists)
            st.toast(f"queued run {run_id}")


def run_label(run: Run) -> str:
    acc = f" · {run.test_accuracy:.2%}" if run.test_accuracy is not None else ""
    return f"{run.label} · {run.id[-6:]} · {run.status}{acc}"  # ids keep equal names apart


def live_view(run_id: str) -> None:
    """Progress, curves and the stop button of one run, read from the store."""
    row = store.get(run_id)
    last = store.last_metric(run_id)
    if row.status.active:
        if last:
            done = last["step"] / max(last["total_steps"] or 1, 1)
            left = last["elapsed"] * (1 - done) / max(done, 1e-9)
            st.progress(
                min(done, 1.0),
                text=f"epoch {last['epoch']}/{row.epochs} · "
                f"{last['images_per_s']:,.0f} images/s · about {left:,.0f} s left",
            )
        else:
            st.progress(0.0, text=f"{row.status}: waiting for the first steps…")
        if st.button("⏹ Stop", key=f"train.stop.{run_id}"):
            manager.stop(run_id)
    long = curves(store, [run_id], "epoch")
    if not long.empty:
        chart_with_svg(curves_chart(long, color="metric"), f"{row.label}-curves", f"train.svg.{run_id}")
    elif row.status.active:
        steps = curves(store, [run_id], "step")
        if not steps.empty:
            st.altair_chart(curves_chart(steps, color="metric", x="step"), width="stretch")


def results(run_id: str) -> None:
    row = store.get(run_id)
    if row.status not in ("completed", "stopped") or row.test_accuracy is None:
        if row.error:
            st.error(f"{row.status}: {row.error}")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("test accuracy", f"{row.test_accuracy:.2%}")
    c2.metric("validation accuracy", f"{row.val_accuracy:.2%}" if row.val_accuracy is not None else "—")
    c3.metric("time", f"{row.seconds:.1f} s", help=f"{row.images_per_s:,.0f} images/s on {row.device}")
    preds = load_predictions(store, run_id)
    if preds:
        labels, predicted = np.array(preds["labels"]), np.array(preds["predictions"])
        left, right = st.columns(2)
        left.altair_chart(
            confusion_chart(
                confusion_matrix(labels, predicted, len(preds["classes"])), preds["classes"], "confusion matrix (test)"
            )
        )
        wrong = np.flatnonzero(labels != predicted)[:12]
        if len(wrong):
            try:
                images, _, _ = test_images(row.dataset, row.data_dir)
                right.markdown("**Misclassified test images** (true → predicted)")
                right.image(
                    [images[i, 0] for i in wrong],
                    width=64,
                    caption=[f"{preds['classes'][labels[i]]}→{preds['classes'][predicted[i]]}" for i in wrong],
                )
            except Exception as err:  # the dataset may have moved since the run
                right.info(f"test images not available: {err}")
    ckpt = store.run_dir(run_id) / "model.safetensors"
    d1, d2, d3 = st.columns(3)
    if ckpt.is_file():
        d1.download_button(
            "checkpoint (.safetensors)", ckpt.read_bytes, f"{row.label}.safetensors", key=f"train.dl.ckpt.{run_id}"
        )
    d2.download_button("config (.json)", row.config.to_json(), f"{row.label}.json", key=f"train.dl.cfg.{run_id}")
    d3.download_button(
        "metrics (.csv)",
        lambda: pd.DataFrame(store.metrics(run_id)).to_csv(index=False),  # built on click, not on every rerun
        f"{row.label}-metrics.csv",
        key=f"train.dl.csv.{run_id}",
    )


st.divider()
st.subheader("Runs")
rows = store.list()
if not rows:
    st.info("No runs yet: set the hyperparameters above and launch one.")
    st.stop()
ids = [r.id for r in rows]
by_id = {r.id: r for r in rows}
if st.session_state.get("train.pick") not in ids:  # deleted meanwhile, or not a run of this store
    st.session_state.pop("train.pick", None)
selected = st.selectbox("run", ids, format_func=lambda i: run_label(by_id[i]), key="train.pick")
any_active = any(r.status.active for r in rows)


@st.fragment(run_every=1.0 if any_active else None)
def live() -> None:
    live_view(selected)
    if any_active and not store.list(status=ACTIVE):
        st.rerun()  # everything finished: redraw the page once, which also stops this polling


live()
results(selected)
st.dataframe(
    pd.DataFrame(
        [
            {
                "name": r.label,
                "status": r.status.value,
                "epochs": r.epochs_done,
                "test_accuracy": r.test_accuracy,
                "device": r.device,
                "id": r.id,
            }
            for r in rows
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={"test_accuracy": st.column_config.NumberColumn(format="percent")},
)
