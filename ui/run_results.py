"""What a finished (or stopped, interrupted) run left: scores, confusion matrix, its worst mistakes, downloads."""

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from cnn_core import heatmap
from cnn_core.compare import confident_mistakes, confusion_matrix, load_predictions
from cnn_core.errors import CnnLabError
from cnn_core.runs import Run, RunStore, Status
from ui.charts import confusion_chart
from ui.digit_input import open_test_digit
from ui.resources import test_images


def ended_text(run: Run) -> str | None:
    """'stopped at epoch 12/15' for a run that ended early; None for one that completed."""
    if run.status is Status.COMPLETED or run.status.active:
        return None
    return f"{run.status} at epoch {run.epochs_done}/{run.epochs}"


def _open_in_explain(run: Run, index: int) -> None:
    st.session_state["explain.model"] = f"run: {run.label} ({run.id})"
    open_test_digit("explain", index)
    st.session_state["train.go_explain"] = True


def _mistakes(run: Run, preds: dict, slot) -> None:
    """The most confident mistakes first, each with a button that opens it on the Explain page."""
    wrong = confident_mistakes(preds)
    if not wrong:
        return
    try:
        model = run.config.model
        images, _, _ = test_images(run.dataset, run.data_dir, model.input_size, model.in_channels)
    except CnnLabError as err:  # the dataset may have moved since the run
        slot.info(f"Test images not available: {err}")
        return
    classes, sure = preds["classes"], preds.get("confidences")
    slot.markdown("**Its most confident mistakes** (true → predicted)")
    for start in range(0, len(wrong), 6):
        for col, i in zip(slot.columns(6), wrong[start : start + 6], strict=False):
            how = f" · {sure[i]:.0%}" if sure else ""
            col.image(
                heatmap.grey_rgb(images[i], 1),
                width=64,
                caption=f"{classes[preds['labels'][i]]}→{classes[preds['predictions'][i]]}{how}",
            )
            col.button("Explain", key=f"train.explain.{run.id}.{i}", on_click=_open_in_explain, args=(run, i))


def show_results(store: RunStore, run: Run) -> None:
    if ended_text(run):
        st.caption(ended_text(run) + (f": {run.error}" if run.error and run.status is not Status.STOPPED else ""))
    if run.status is Status.COMPLETED or (run.status is Status.STOPPED and run.test_accuracy is not None):
        c1, c2, c3 = st.columns(3)
        c1.metric("test accuracy", f"{run.test_accuracy:.2%}")
        c2.metric("validation accuracy", f"{run.val_accuracy:.2%}" if run.val_accuracy is not None else "—")
        speed = f"{run.images_per_s:,.0f} images/s on {run.where}" if run.images_per_s else None
        c3.metric("time", f"{run.seconds:.1f} s" if run.seconds is not None else "—", help=speed)
        if run.node:
            st.caption(f"Trained on the lab's Ray cluster: {run.where}.")
    elif run.error and run.status.finished:
        st.error(f"{run.status}: {run.error}")
    preds = load_predictions(store, run.id)
    if preds:
        left, right = st.columns([2, 3])
        counts = confusion_matrix(np.array(preds["labels"]), np.array(preds["predictions"]), len(preds["classes"]))
        left.altair_chart(confusion_chart(counts, preds["classes"], "confusion matrix (test)"))
        _mistakes(run, preds, right)
    _downloads(store, run)


def _downloads(store: RunStore, run: Run) -> None:
    """The final model, or (stopped, interrupted, diverged) the last epoch's checkpoint it kept."""
    d1, d2, d3 = st.columns(3)
    checkpoint = Path(run.checkpoint) if run.checkpoint else None
    if checkpoint is not None and checkpoint.is_file() and run.status.finished:
        what = "checkpoint" if checkpoint.name == "model.safetensors" else f"last checkpoint (epoch {run.epochs_done})"
        d1.download_button(
            f"{what} (.safetensors)", checkpoint.read_bytes, f"{run.label}.safetensors", key=f"train.dl.ckpt.{run.id}"
        )
    d2.download_button("config (.json)", run.config.to_json(), f"{run.label}.json", key=f"train.dl.cfg.{run.id}")
    d3.download_button(
        "metrics (.csv)",
        lambda: pd.DataFrame(store.metrics(run.id)).to_csv(index=False),  # built on click, not on every rerun
        f"{run.label}-metrics.csv",
        key=f"train.dl.csv.{run.id}",
    )
