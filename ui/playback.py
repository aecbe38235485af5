"""A play control for a run's saved epochs: a slider to scrub and a ▶ button that steps through them.

The chosen epoch lives in ``st.session_state["<page>.at"]``, copied into the slider before it is drawn
(Streamlit's widget-state pattern), so the timer can move it without touching a widget's own key. While
playing, a small fragment ticks every ``seconds`` and reruns the page one epoch further on; it is only drawn
while playing, so nothing polls once the last epoch is reached or the user pauses.
"""

import streamlit as st

SECONDS_PER_EPOCH = 1.5  # long enough to read a frame; 20 epochs play in half a minute


def _toggle(key: str, count: int) -> None:
    state = st.session_state
    if state.get(f"{key}.playing"):
        state[f"{key}.playing"] = False
        return
    if state.get(f"{key}.at", count) >= count:  # at the end: play from the start again
        state[f"{key}.at"] = 1
    state[f"{key}.playing"] = True


def _scrubbed(key: str) -> None:
    st.session_state[f"{key}.at"] = st.session_state[f"{key}.epoch"]
    st.session_state[f"{key}.playing"] = False  # a hand on the slider stops the playback


def step(key: str, count: int) -> None:
    """One epoch further (what each tick does); the playback stops on the last epoch."""
    state = st.session_state
    state[f"{key}.at"] = min(state.get(f"{key}.at", count) + 1, count)
    if state[f"{key}.at"] >= count:
        state[f"{key}.playing"] = False


def epoch_player(key: str, count: int, label: str = "Epoch", help: str | None = None) -> int:
    """Draw the play button and the epoch slider of page ``key`` for epochs 1..count; the epoch to show."""
    state = st.session_state
    at = state.get(f"{key}.at")
    state[f"{key}.at"] = at = count if not isinstance(at, int) or not 1 <= at <= count else at
    state[f"{key}.epoch"] = at
    playing = bool(state.get(f"{key}.playing"))
    left, right = st.columns([1, 5], vertical_alignment="bottom")
    left.button(
        "⏸ Pause" if playing else "▶ Play",
        key=f"{key}.play",
        on_click=_toggle,
        args=(key, count),
        help="Step through the saved epochs, one every 1.5 s",
    )
    right.slider(label, 1, count, key=f"{key}.epoch", help=help, on_change=_scrubbed, args=(key,))
    if playing:
        _ticker(key, count)
    return at


def _ticker(key: str, count: int) -> None:
    state = st.session_state
    state[f"{key}.drawn"] = True

    @st.fragment(run_every=SECONDS_PER_EPOCH)
    def tick() -> None:
        if state.pop(f"{key}.drawn", False):
            return  # drawn with the page, which already shows this epoch: the next tick moves on
        if state.get(f"{key}.playing"):
            step(key, count)
            st.rerun()  # the whole page, at the next epoch

    tick()
