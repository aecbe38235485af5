"""Move the input on the Explain page: shift, rotate, scale, thicken and add noise, and watch the answer move."""

import numpy as np
import streamlit as st

from cnn_core import heatmap
from cnn_core.charts import probability_chart
from cnn_core.compare import invariance
from cnn_core.explain.predict import probabilities

MOVES = {  # key -> (label, lowest, highest, step, unchanged)
    "dx": ("shift right (px)", -4, 4, 1, 0),
    "dy": ("shift down (px)", -4, 4, 1, 0),
    "angle": ("rotate clockwise (°)", -30, 30, 5, 0),
    "scale": ("scale (× size)", 0.7, 1.3, 0.05, 1.0),
    "thickness": ("stroke (px thicker)", -2, 2, 1, 0),
    "noise": ("noise (std)", 0.0, 0.5, 0.05, 0.0),
}


def _reset() -> None:
    for key, (*_, unchanged) in MOVES.items():
        st.session_state[f"explain.move.{key}"] = unchanged


@st.fragment
def move_input(model, image: np.ndarray, classes: list[str]) -> None:
    """Sliders over the current input; a move reruns only this part (one forward pass, ~1 ms)."""
    columns = st.columns(len(MOVES))
    values = {
        key: column.slider(label, low, high, unchanged, step, key=f"explain.move.{key}")
        for column, (key, (label, low, high, step, unchanged)) in zip(columns, MOVES.items(), strict=True)
    }
    moved = invariance.perturb(
        image, (values["dx"], values["dy"]), values["angle"], values["scale"], values["thickness"], values["noise"]
    )
    before, after = probabilities(model, image), probabilities(model, moved)
    said, was = int(after.argmax()), int(before.argmax())
    left, right = st.columns([1, 3])
    left.image(heatmap.grey_rgb(moved), caption="moved input", width=160, output_format="PNG")
    change = "unchanged" if said == was else f"was {classes[was]}"
    left.markdown(f"Moved, it answers **{classes[said]}** · {after.max():.1%} sure · {change}")
    left.button("Reset", key="explain.move.reset", on_click=_reset)
    right.altair_chart(probability_chart(after, classes), width="stretch")
