"""Run (and sweep) pickers whose choice survives the labels changing (a rename, a status that moves on).

Streamlit keeps a selectbox's value as the *label* it showed, and the browser sends that label back. When a
label changes ("· running" becomes "· completed", or a rename), the old label is no longer among the options:
the widget falls back to the first run, so the next action (a second rename) lands on another run. Here the
chosen run ids live under a key of their own, and the widget's key carries a fingerprint of its labels: when
any label changes, it is a new widget that starts on the remembered runs.
"""

import zlib
from collections.abc import Callable

import streamlit as st

from cnn_core.runs import Run


def _widget_key(key: str, labels: list[str]) -> str:
    return f"{key}.w{zlib.crc32(chr(10).join(labels).encode()):08x}"


def select(key: str, value: str) -> None:
    """Make run ``value`` the picker's choice on the page's next run (for example after launching it)."""
    st.session_state[key] = value


def pick_one(label: str, ids: list[str], labels: list[str], key: str, container=st) -> str:
    """A selectbox over ``ids`` shown as ``labels`` that stays on the chosen one (the first when none is
    chosen) and shows its label as it is now; the id."""
    chosen = st.session_state.get(key)
    picked = container.selectbox(
        label,
        ids,
        index=ids.index(chosen) if chosen in ids else 0,
        format_func=dict(zip(ids, labels, strict=True)).get,
        key=_widget_key(key, labels),
    )
    st.session_state[key] = picked
    return picked


def pick_run(label: str, runs: list[Run], key: str, format_func: Callable[[Run], str], container=st) -> str:
    """A selectbox over ``runs`` that stays on the chosen run (newest first when none is chosen); its id."""
    return pick_one(label, [r.id for r in runs], [format_func(r) for r in runs], key, container)


def pick_runs(label: str, runs: list[Run], key: str, format_func: Callable[[Run], str], container=st) -> list[str]:
    """A multiselect over ``runs`` that keeps its choice through renames and status changes; the ids."""
    ids, labels = [r.id for r in runs], [format_func(r) for r in runs]
    chosen = [i for i in st.session_state.get(key, []) if i in ids]
    picked = container.multiselect(
        label, ids, default=chosen, format_func=dict(zip(ids, labels, strict=True)).get, key=_widget_key(key, labels)
    )
    st.session_state[key] = picked
    return picked
