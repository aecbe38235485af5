"""Pooling's invariance on the Compare page: accuracy as the test images shift, rotate and scale."""

import streamlit as st
import torch

from cnn_core.charts import invariance_charts
from cnn_core.compare import invariance
from cnn_core.errors import CnnLabError
from cnn_core.model.checkpoint import BUNDLED
from cnn_core.runs import Run, Status
from ui import computed
from ui.charts import charts_with_svg
from ui.resources import checkpoint_model, test_images
from ui.run_picker import pick_runs

BUNDLED_PAIR = "the bundled max and avg models"
PICK = "runs I pick"
COMPARISON = "the comparison above"


def _kept(run: Run) -> bool:
    return run.status is Status.COMPLETED and bool(run.checkpoint)


def _by_pooling(members: list[Run]) -> dict[str, list[Run]]:
    """A comparison's completed runs, one line per pooling (its seeds averaged)."""
    lines: dict[str, list[Run]] = {}
    for run in sorted(members, key=lambda r: (r.pooling != "max", r.seed)):
        if _kept(run):
            lines.setdefault(f"{run.pooling} pooling", []).append(run)
    return lines


def _what(comparison: list[Run] | None, runs: list[Run]) -> tuple[dict[str, list[str]], str, str | None]:
    """The picker: line label -> checkpoint sources, and the dataset (and folder) they are tested on."""
    options = ([COMPARISON] if comparison else []) + [BUNDLED_PAIR, PICK]
    state = st.session_state
    if comparison and not state.get("compare.invariance.offered"):
        state["compare.invariance.what"] = COMPARISON  # it just appeared: measure it, not what was there before
    state["compare.invariance.offered"] = bool(comparison)
    what = st.radio("Measure", options, horizontal=True, key="compare.invariance.what")
    if what == BUNDLED_PAIR:
        return {name.removeprefix("lenet5-mnist-"): [name] for name in BUNDLED}, "mnist", None
    if what == PICK:
        kept = [r for r in runs if _kept(r)]
        picked = pick_runs("runs to measure", kept, "compare.invariance.runs", lambda r: f"{r.label} · {r.id[-6:]}")
        chosen = [r for r in kept if r.id in picked]
        lines = {f"{r.label} · {r.id[-6:]}": [r.checkpoint] for r in chosen}
    else:
        chosen = [r for r in comparison if _kept(r)]
        lines = {label: [r.checkpoint for r in group] for label, group in _by_pooling(comparison).items()}
    first = chosen[0] if chosen else None
    return lines, (first.dataset if first else "mnist"), (first.data_dir if first else None)


def invariance_section(comparison: list[Run] | None, runs: list[Run]) -> None:
    st.header("Pooling's invariance, measured")
    st.caption(
        "The article says pooling makes a network tolerant to small shifts. Here is the test: the same test "
        "images shifted by 0–4 pixels (four directions averaged), rotated by 0–30° (both ways) and scaled by "
        "0.7–1.3, one line per run; a band is ± one standard deviation over its seeds."
    )
    lines, dataset, data_dir = _what(comparison, runs)
    if not lines:
        st.info("No completed run with a checkpoint to measure yet.")
        return
    key = ("invariance", tuple((label, tuple(sources)) for label, sources in lines.items()), dataset, data_dir)
    curves = computed.cached(key)
    if curves is None and not st.button("📏 Measure", key="compare.invariance.measure"):
        seeds = sum(len(s) for s in lines.values())
        st.caption(f"{seeds} model(s) × {invariance.passes_per_model()} passes over the test images.")
        return
    if curves is None:
        models = {label: [checkpoint_model(s) for s in sources] for label, sources in lines.items()}
        config = next(iter(models.values()))[0].config
        try:
            x, y, _ = test_images(dataset, data_dir, config.input_size, config.in_channels)
        except CnnLabError as err:
            st.error(str(err))
            return
        curves = computed.once(
            key,
            lambda progress: invariance.curves(models, torch.from_numpy(x), torch.from_numpy(y), progress),
            "Testing shifted, rotated and scaled images…",
        )
    charts_with_svg(invariance_charts(curves), "invariance", "compare.svg.invariance")
    st.info(invariance.summary(curves))
