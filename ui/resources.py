"""Heavy objects cached once per app (``st.cache_resource``: shared by every session, so read-only per user)."""

import numpy as np
import streamlit as st

from cnn_core.data import load_dataset
from cnn_core.errors import BadRunStore, CnnLabError, RunStoreLost
from cnn_core.jobs import JobManager
from cnn_core.model.checkpoint import load_checkpoint, unverified_note
from cnn_core.runs import RunStore, default_runs_dir
from ui.digit_input import InputKind


@st.cache_resource(on_release=lambda manager: manager.close())
def _manager_for(root: str) -> JobManager:
    return JobManager(RunStore(root))


def job_manager() -> JobManager:
    """The one job manager of this app (per run folder): every session queues runs here and reads the store."""
    return _manager_for(str(default_runs_dir()))


def run_store_or_warn() -> RunStore | None:
    """The run store for a page that can do without it (bundled models): None, with a warning, when it is broken."""
    try:
        return RunStore()
    except BadRunStore as err:
        st.warning(f"Your runs cannot be shown: {err}")
        return None


def job_manager_or_stop() -> JobManager:
    """The job manager, or (for a page that needs the run store) an error line and the end of the page.

    An empty or missing database beside run folders can be rebuilt from them here, with one click."""
    try:
        return job_manager()
    except BadRunStore as err:
        st.error(str(err))
        if isinstance(err, RunStoreLost) and st.button("Rebuild the run store from its folders"):
            added = RunStore(default_runs_dir(), reimport=True).reimport()
            st.success(f"re-imported {len(added)} run(s)")
            st.rerun()
        st.stop()


@st.cache_resource(max_entries=16)
def checkpoint_model(source: str):
    """A checkpoint's model (bundled name or path), loaded once and shared by the Filters and Explain pages."""
    return load_checkpoint(source).model


@st.cache_resource(max_entries=16)
def checkpoint_verified(source: str) -> bool:
    """Whether a checkpoint's weights matched a recorded SHA-256 (False: it records none)."""
    return load_checkpoint(source).verified


def usable_checkpoint(source: str) -> bool:
    """Open the chosen checkpoint once: a damaged one (truncated, mismatched) is one error line and False, so the
    page can stop there with its picker still on screen; one without a SHA-256 gets an "unverified" badge."""
    try:
        verified = checkpoint_verified(source)
    except CnnLabError as err:
        st.error(str(err))
        return False
    if not verified:
        st.badge("unverified", icon=":material/gpp_maybe:", color="orange", help=unverified_note(source))
    return True


@st.cache_resource(max_entries=16)
def checkpoint_kind(source: str) -> InputKind:
    """What a checkpoint's model takes: how to prepare an outside image (digit or photo), its size and channels."""
    checkpoint = load_checkpoint(source)
    return InputKind(checkpoint.preprocess, checkpoint.config.input_size, checkpoint.config.in_channels)


@st.cache_data(max_entries=4, show_spinner="Loading the test images…")
def test_images(
    dataset: str, data_dir: str | None, size: int | None = None, channels: int | str = "auto"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A dataset's test images (N, C, H, W uint8), labels and class names, for confusion matrices and galleries.

    ``size`` and ``channels`` matter only for class folders given by path (a run's model says which)."""
    name = "mnist" if dataset == "idx" else dataset  # an IDX folder is read as the MNIST family
    data = load_dataset(name, data_dir=data_dir, download=False, size=size, channels=channels)
    return data.test_x.numpy(), data.test_y.numpy(), data.classes
