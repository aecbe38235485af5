"""The model picker of Filters, Embedding and Explain: bundled models, runs, and each sweep as one entry whose
trials come in a second picker, best first (``probe.model_choices``)."""

import streamlit as st

TRIAL_HELP = "The sweep's trials, best test accuracy first: the first one is its best."


def _follow_link(key: str, trial_key: str, choices: dict) -> None:
    """A link (the Sweep page's "Open on …", a mistake's "Explain") names a run: when it is a sweep's trial,
    choose that sweep and the trial; when it is gone, forget it."""
    wanted = st.session_state.get(key)
    if wanted is None or wanted in choices:
        return
    del st.session_state[key]
    holder = next((label for label, c in choices.items() if wanted in c.get("trials", {})), None)
    if holder is not None:
        st.session_state[key], st.session_state[trial_key] = holder, wanted


def pick_model(page: str, choices: dict[str, dict], default: str | None = None) -> tuple[str, dict]:
    """Draw the picker of ``page`` ("filters", ...); the chosen model's label and choice (a sweep: its trial's)."""
    key, trial_key = f"{page}.model", f"{page}.trial"
    _follow_link(key, trial_key, choices)
    labels = list(choices)
    label = st.selectbox("Model", labels, labels.index(default) if default in labels else 0, key=key)
    trials = choices[label].get("trials")
    if not trials:
        return label, choices[label]
    names = list(trials)
    if st.session_state.get(trial_key) not in names:
        st.session_state.pop(trial_key, None)
    trial = st.selectbox("Trial", names, key=trial_key, help=TRIAL_HELP)
    return trial, trials[trial]
