"""Home: where to start (the pages as a path), your recent runs, where training will run, and the bundled models."""

import pandas as pd
import streamlit as st

from cnn_core.charts import bundled_accuracy_chart
from cnn_core.compare import bundled_verdict
from cnn_core.config import ModelConfig
from cnn_core.model.checkpoint import bundled_checkpoints
from cnn_core.runs import Run, RunStore
from cnn_core.shapes import layer_table, total_params
from cnn_core.training.loop import device_label, pick_device
from ui.identity import person
from ui.resources import run_store_or_warn

# The pages in the order a newcomer meets the ideas. Titles come from app.py's st.Page (page_link reads them).
STEPS = [
    ("views/concepts.py", "Slide a filter over an image: see what stride, padding and pooling do to it."),
    ("views/data.py", "Bring your own images, a folder per class (MNIST and others are already here)."),
    ("views/train.py", "Set up LeNet-5, check every layer's shape, then train it and watch it learn."),
    ("views/compare.py", "Put max and average pooling side by side, fairly, over several seeds."),
    ("views/sweep.py", "Try many settings at once and see which of them mattered."),
    ("views/filters.py", "Look at the filters a network learned and the feature maps they make of a digit."),
    ("views/embedding.py", "Watch the classes pull apart in what the network's last layer sees, epoch by epoch."),
    ("views/explain.py", "Ask a model why it answered: which pixels drove its guess."),
]
PER_ROW = 4  # eight steps in two rows: eight columns would squeeze each line to a few words
RECENT = 5  # runs shown on Home; Train and Compare list them all


@st.cache_resource
def training_device() -> str:
    return device_label(pick_device("auto"))


def show_path() -> None:
    """Every page as a numbered step, each a link with one line on what you do there."""
    st.subheader("Where to start")
    with st.container(key="home-path"):  # the key gives the browser test a handle on the steps
        for start in range(0, len(STEPS), PER_ROW):
            row = STEPS[start : start + PER_ROW]
            for number, (slot, (page, what)) in enumerate(zip(st.columns(PER_ROW), row, strict=False), start=start + 1):
                slot.page_link(page, icon=f":material/counter_{number}:")
                slot.caption(what)


def accuracy_text(run: Run) -> str:
    """The test accuracy of a finished run; a dash while it is queued or training (or when it was not measured)."""
    return f"{run.test_accuracy:.2%}" if run.status.finished and run.test_accuracy is not None else "—"


def show_recent_runs(store: RunStore) -> None:
    """The newest runs with their status (and test accuracy once finished), or an invitation to a first run."""
    st.subheader("Your recent runs")
    runs = store.list(visible_to=person())[:RECENT]
    if not runs:
        st.page_link("views/train.py", label="No runs yet: train your first network on Train", icon="🏋️")
        return
    frame = pd.DataFrame(
        {
            "run": [run.label for run in runs],  # a name with its control characters escaped
            "status": [str(run.status) for run in runs],
            "epochs": [f"{run.epochs_done} / {run.epochs}" for run in runs],
            "pooling": [run.pooling for run in runs],
            "test accuracy": [accuracy_text(run) for run in runs],
        }
    )
    st.dataframe(frame, hide_index=True)
    st.page_link("views/train.py", label="Follow them or start another on Train", icon="🏋️")


st.title("🧠 CNN Lab")
st.markdown(
    "See how a convolutional network learns. CNN Lab turns the article *Convolutional Neural Network in "
    "PyTorch* (LeNet-5 on MNIST) into something you can drive, one page at a time."
)
show_path()
store = run_store_or_warn()  # None (after a warning) when the store is broken: the rest of Home still works
if store is not None:
    show_recent_runs(store)

device = training_device()
col1, col2 = st.columns(2)
col1.metric("Training device", "GPU" if device.startswith("cuda") else device.upper(), help=device)
col1.caption(f"Runs will train on **{device}**.")
col2.metric("LeNet-5 parameters", f"{total_params(layer_table(ModelConfig())):,}")

st.subheader("Bundled models")
rows = pd.DataFrame(bundled_checkpoints())
if rows.empty or not rows["available"].any():
    st.warning("No bundled checkpoints found: run `python scripts/make_checkpoints.py`.")
else:
    st.dataframe(
        rows[["name", "description", "test_accuracy", "official_test_accuracy"]],
        hide_index=True,
        column_config={
            "test_accuracy": st.column_config.NumberColumn("held-out accuracy", format="percent"),
            "official_test_accuracy": st.column_config.NumberColumn("MNIST 10k test", format="percent"),
        },
    )
    st.altair_chart(bundled_accuracy_chart(rows), width="stretch")
    st.caption(bundled_verdict(rows.to_dict("records")))
