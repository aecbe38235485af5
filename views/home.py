"""Home: what CNN Lab is, where training will run, and the bundled models."""

import pandas as pd
import streamlit as st

from cnn_core.charts import bundled_accuracy_chart
from cnn_core.checkpoint import bundled_checkpoints
from cnn_core.config import ModelConfig
from cnn_core.shapes import layer_table, total_params
from cnn_core.train import device_label, pick_device


@st.cache_resource
def training_device() -> str:
    return device_label(pick_device("auto"))


st.title("🧠 CNN Lab")
st.markdown(
    "See how a convolutional network learns. CNN Lab turns the article *Convolutional Neural Network in "
    "PyTorch* (LeNet-5 on MNIST) into something you can drive: set filter size, depth, stride, padding and "
    "pooling and see every layer's shape before training; train and watch the curves; compare max and "
    "average pooling fairly; look at filters and feature maps; and ask the model why it answered as it did."
)
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
