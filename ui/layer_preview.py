"""The Train page's preview: every layer's shape, parameters and cost before training, or how far it gets."""

import pandas as pd
import streamlit as st

from cnn_core.config import budget
from cnn_core.config.budget import human_bytes
from cnn_core.errors import InvalidConfig
from cnn_core.shapes import Layer, total_macs, total_params
from ui.config_form import Draft

COLUMNS = ("layer", "type", "output (C×H×W)", "params", "MACs", "RF", "stride fits")


def layer_frame(layers: list[Layer], impossible: str | None = None) -> pd.DataFrame:
    """One row a layer; the first impossible layer, when there is one, as a last row saying so.

    Every cell is text: a blank in a column of numbers would make Arrow refuse the column (a traceback in the
    server log each time the table shows an impossible layer)."""
    rows = [
        dict(
            zip(
                COLUMNS,
                (
                    l.name,
                    l.type,
                    "×".join(map(str, l.output_shape)),
                    f"{l.params:,}",
                    f"{l.macs:,}",
                    str(l.receptive_field),
                    "—" if l.type in ("fc", "flatten") else ("yes" if l.fits else "NO"),
                ),
                strict=True,
            )
        )
        for l in layers
    ]
    if impossible:
        rows.append(dict.fromkeys(COLUMNS, "") | {"layer": impossible, "type": "⛔", "output (C×H×W)": "impossible"})
        rows[-1]["stride fits"] = "—"
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _mark(row: pd.Series) -> list[str]:
    colour = "background-color: #fde2e1" if row["type"] == "⛔" else ""
    colour = colour or ("background-color: #fff4ce" if row["stride fits"] == "NO" else "")
    return [colour] * len(row)


def show_layers(draft: Draft) -> str | None:
    """Draw the layer table, totals, cost and formulas; returns why Launch must stay disabled (None if it may go)."""
    if not draft.layers and not draft.impossible:
        st.error(draft.problem)
        return draft.problem
    # A static table: it wraps instead of cutting its last column in a narrow column (st.dataframe scrolls).
    st.table(layer_frame(draft.layers, draft.impossible).style.apply(_mark, axis=1), border="horizontal")
    if draft.run is None:
        st.error(draft.problem)
        if draft.cause:
            st.warning(f"Made impossible by your change: {draft.cause}")
    if not draft.layers:  # the first layer is the impossible one: nothing to count
        return draft.problem
    problem = draft.problem
    # two to a row, memory and disk apart: three in a row were cut at 1280 px ("multiply-adds per i…", "37 MB…")
    m1, m2 = st.columns(2)
    m1.metric("parameters", f"{total_params(draft.layers):,}")
    m2.metric("multiply-adds per image", f"{total_macs(draft.layers):,}")
    m3, m4 = st.columns(2)
    if draft.run is not None:
        try:
            cost = budget.check(draft.run)
        except InvalidConfig as err:  # over budget, or a bad CNN_LAB_MAX_* variable
            problem = str(err)
            st.error(problem)
        else:
            how = f"Estimated before training: {cost.describe()}."
            m3.metric(
                "training memory",
                human_bytes(cost.training_memory_bytes),
                help=f"{how} One batch forward + backward, weights, optimizer state. Limit: CNN_LAB_MAX_MEMORY_MB.",
            )
            m4.metric(
                "disk",
                human_bytes(cost.checkpoint_disk_bytes),
                help=f"{how} A checkpoint per epoch. Limit: CNN_LAB_MAX_DISK_MB.",
            )
    st.markdown("**Output size** = (W − F + 2P) / S + 1")
    for l in draft.layers:
        if l.type in ("conv", "pool"):
            mark = "✅" if l.fits else f"⚠️ stride does not fit: PyTorch drops the last {l.dropped} row(s)/column(s)"
            st.markdown(f"`{l.name}`: {l.formula} {mark}")
    return problem
