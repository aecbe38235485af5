"""Show the code: the plain PyTorch script for the Train page's current config, shown and downloadable."""

import streamlit as st

from cnn_core.config import RunConfig
from cnn_core.teaching.codegen import LOAD_LINES, training_script


@st.cache_data(max_entries=32, show_spinner=False)
def _script(config_json: str, dataset: str) -> str:
    return training_script(RunConfig.from_json(config_json), dataset)


def show_code(run: RunConfig | None, dataset: str) -> None:
    """An expander with the script (or why there is none), its download, and the lines that load a checkpoint."""
    with st.expander("Show the code", icon=":material/code:"):
        if run is None:
            st.info("Fix the configuration above first: there is no code for a network that cannot be built.")
            return
        script = _script(run.to_json(), dataset)
        st.caption(
            "The same network, data and training loop in plain PyTorch + torchvision, to carry on in a notebook "
            "(CNN Lab's validation split is left out: the script trains on the whole training set). Its layers "
            "carry CNN Lab's names, so a checkpoint downloaded here loads into it with three lines:"
        )
        st.code(LOAD_LINES, language="python")
        st.download_button(
            "train_cnn.py",
            script,
            "train_cnn.py",
            "text/x-python",
            key="train.code.download",
            icon=":material/download:",
        )
        st.code(script, language="python", line_numbers=True)
