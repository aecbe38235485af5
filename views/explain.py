"""Explain: what the model sees, what it answers, which pixels drove the answer, and which map to trust."""

import numpy as np
import pandas as pd
import streamlit as st
import torch

from cnn_core import explain, heatmap
from cnn_core.charts import confusion_chart, deletion_chart, probability_chart
from cnn_core.compare import confusion_matrix
from cnn_core.errors import CnnLabError
from cnn_core.explain import faithfulness
from cnn_core.explain import filters as probe
from cnn_core.explain.predict import probabilities
from ui.digit_input import open_test_digit, opened_test_digit, pick_digit, show_steps
from ui.identity import person
from ui.model_picker import pick_model
from ui.move_input import move_input
from ui.predict_first import predict_first_view
from ui.resources import checkpoint_kind, checkpoint_model, run_store_or_warn, test_images, usable_checkpoint

UNSURE = 0.6  # below this top probability the page warns that the model is guessing
OTHER_POOLING = {"lenet5-mnist-max": "lenet5-mnist-avg", "lenet5-mnist-avg": "lenet5-mnist-max"}
DELTA_HELP = "Captum's convergence delta: the map's sum minus the score change it should add up to; near 0 is complete."
EXPLANATION = "which-pixels-drove-the-answer"  # the anchor Streamlit gives that subheader
PREDICT_FIRST_HELP = "Predict first: guess the model's answer and where it looks on a test digit, then reveal."


@st.cache_data(max_entries=8, show_spinner="Testing the model on the test split…")
def split_predictions(source: str, name: str, data_dir: str | None):
    config = checkpoint_model(source).config
    x, y, _ = test_images(name, data_dir, config.input_size, config.in_channels)
    return probe.split_predictions(checkpoint_model(source), torch.from_numpy(x), torch.from_numpy(y))


@st.cache_resource(max_entries=8)
def forward_memory(source: str, image: np.ndarray) -> dict:
    """The forward passes made for this model and digit (explain.RememberedForward), kept for the next
    class: they are the model's, not a user's, so every session may share them."""
    return {}


@st.cache_data(max_entries=32, show_spinner=False)
def attributions(source: str, image: np.ndarray, target: int, methods: tuple, options: dict) -> dict:
    model = checkpoint_model(source)
    x = probe.as_batch(image, model.config.in_channels)
    maps = explain.attribute_all(model, x, target, methods, options, forward_memory(source, image))
    return {k: v.numpy() for k, v in maps.items()}


@st.cache_data(max_entries=16, show_spinner="Scoring faithfulness…")
def faithfulness_report(source: str, image: np.ndarray, target: int, methods: tuple, options: dict):
    x = probe.as_batch(image, checkpoint_model(source).config.in_channels)
    maps = {k: torch.as_tensor(v) for k, v in attributions(source, image, target, methods, options).items()}
    memory = forward_memory(source, image)
    rows, curves = faithfulness.report(checkpoint_model(source), x, target, maps, options, memory)
    return rows, curves, faithfulness.completeness_all(checkpoint_model(source), x, target, maps, options)


@st.cache_resource(max_entries=32)
def declared_options(source: str, name: str) -> tuple:
    return explain.options_for(name, checkpoint_model(source))  # a forward pass for a layer list: once


def method_options(methods: tuple, source: str) -> dict:
    """A widget for every declared option of the chosen methods."""
    options: dict = {}
    for name in methods:
        st.caption(f"**{explain.METHODS[name].title}**: {explain.METHODS[name].about}")
        for o in declared_options(source, name):
            key, text = f"explain.{name}.{o.name}", f"{explain.METHODS[name].title}: {o.label}"
            if o.kind == "int":
                value = st.slider(text, o.low, o.high, o.default, key=key, help=o.help)
            elif o.kind == "flag":
                value = st.checkbox(text, o.default, key=key, help=o.help)
            else:
                value = st.selectbox(text, o.choices, o.choices.index(o.default), key=key, help=o.help)
            options.setdefault(name, {})[o.name] = value
    return options


def heatmap_row(title: str, image: np.ndarray, maps: dict, scales: dict) -> None:
    st.markdown(f"**{title}**")
    for start in range(0, len(maps), 4):
        for col, name in zip(st.columns(4), list(maps)[start : start + 4], strict=False):
            caption = f"{explain.METHODS[name].title} (scale ±{scales[name]:.2g})"
            picture = heatmap.overlay(image, maps[name], scales[name])
            col.image(picture, width="stretch", caption=caption, output_format="PNG")


def show_scores(source: str, image: np.ndarray, target: int, methods: tuple, options: dict, name: str) -> None:
    """The plain-words verdict first, then the scores (each column explained on hover) and the curves."""
    rows, curves, complete = faithfulness_report(source, image, target, methods, options)
    st.markdown(f"**Which map to trust here?** {faithfulness.summary(rows, name)}")
    shown, config = rows.copy(), {}
    for column in rows.columns[1:]:  # each score's meaning on hover; a dash, not "None", where there is none
        help_text = faithfulness.SCORE_HELP[column]
        if rows[column].isna().any():
            shown[column] = rows[column].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
            config[column] = st.column_config.TextColumn(column, help=help_text, alignment="right")
        else:
            config[column] = st.column_config.NumberColumn(column, help=help_text, format="%.3f")
    st.dataframe(shown, hide_index=True, column_config=config)
    dash = f" A dash: {faithfulness.FLAT}." if rows.isna().any().any() else ""
    st.caption(f"Hover over a column's name for what it measures.{dash}")
    for method, c in complete.items():
        st.caption(
            f"Completeness of {explain.METHODS[method].title}: the map sums to {c.total:.3f}, the class score "
            f"changed by {c.change:+.3f} from the baseline; convergence Δ = {c.delta:+.3f} ({c.relative:.1%})",
            help=DELTA_HELP,
        )
    st.altair_chart(deletion_chart(curves), width="stretch")


@st.fragment
def explanation(label: str, source: str, image: np.ndarray, predicted: int, classes: list[str]) -> None:
    """Everything that depends on the target class and the methods: a change here reruns only this part."""
    st.subheader("Which pixels drove the answer")
    c1, c2 = st.columns([1, 3])
    picked = c1.selectbox("Explain class", ["predicted"] + classes, key="explain.target")
    target = predicted if picked == "predicted" else classes.index(picked)
    scale_help = "Shared: one scale for all maps. Per method: each its own (the same for both models when comparing)."
    shared = c2.radio("Colour scale", ["per method", "shared"], key="explain.scale", help=scale_help, horizontal=True)
    titles = {name: m.title for name, m in explain.METHODS.items()}
    chosen = st.multiselect("Methods", list(titles), list(titles), format_func=titles.get, key="explain.methods")
    methods = tuple(chosen)
    if not methods:
        st.info("No method chosen: pick at least one above to see which pixels drove the answer.")
        return
    with st.expander("Method settings"):
        options = method_options(methods, source)
    other = OTHER_POOLING.get(source)
    compare = other is not None and st.toggle(f"Compare with {other}", key="explain.compare")
    maps = attributions(source, image, target, methods, options)
    other_maps = attributions(other, image, target, methods, options) if compare else {}
    scales = heatmap.scales(maps, *([other_maps] if compare else []), shared=shared == "shared")  # both models
    st.caption(f"Red pixels push towards class {classes[target]}, blue ones against it; white is neutral.")
    heatmap_row(label, image, maps, scales)
    if compare:
        heatmap_row(other, image, other_maps, scales)
    if st.toggle("Score faithfulness", value=True, key="explain.faithfulness"):
        show_scores(source, image, target, methods, options, classes[target])


@st.fragment
def mistakes(choice: dict, test_x: np.ndarray, test_y: np.ndarray, classes: list[str]) -> None:
    """The confusion matrix and the misclassified digits of a clicked cell, each with a button to open it."""
    st.subheader("Where the model goes wrong")
    accuracy, predictions = split_predictions(choice["source"], choice["dataset"], choice["data_dir"])
    counts = confusion_matrix(test_y, predictions, len(classes))
    st.caption(f"{accuracy:.2%} right on {len(test_y):,} test digits. Click a cell to list those mistakes.")
    state = st.session_state.get("explain.confusion") or {}  # the last click, known before the chart is drawn
    chosen = (state.get("selection", {}).get("cell") or [{}])[0]  # class names of the clicked cell
    chart = confusion_chart(counts, classes, select=True, highlight=chosen)
    st.altair_chart(chart, on_select="rerun", selection_mode="cell", key="explain.confusion", width="content")
    true, said = (classes.index(chosen[k]) if k in chosen else None for k in ("true", "predicted"))
    wrong = probe.misclassified(test_y, predictions, true, said)
    where = f" {chosen['true']}s taken for {chosen['predicted']}" if chosen else ""
    st.caption(f"{len(wrong)} misclassified{where}" + (": the first 16" if len(wrong) > 16 else ""))
    gallery, opened = st.columns([4, 1])
    for start in range(0, min(len(wrong), 16), 6):
        for col, i in zip(gallery.columns(6), wrong[start : start + 6], strict=False):
            caption = f"#{i}: {classes[test_y[i]]} → {classes[predictions[i]]}"
            col.image(heatmap.grey_rgb(test_x[i], 2), caption=caption, output_format="PNG")
            if col.button("Open", key=f"explain.open.{i}", on_click=open_test_digit, args=("explain", int(i))):
                st.rerun()  # the digit picker and the explanation above are outside this fragment
    index = opened_test_digit("explain")
    if index is not None:  # the answer next to the button that asked for it, not 1,500 px above
        probs = probabilities(checkpoint_model(choice["source"]), probe.digit_at(torch.from_numpy(test_x), index))
        caption = f"#{index}, labelled {classes[test_y[index]]}"
        opened.image(heatmap.grey_rgb(test_x[index], 3), caption=caption, output_format="PNG")
        sure = f"{probs.max():.1%} sure"
        opened.metric("Opened: prediction", classes[int(probs.argmax())], sure, delta_color="off", delta_arrow="off")
        opened.markdown(f"[↑ Its explanation](#{EXPLANATION})")


st.title("💡 Explain")
choices = probe.model_choices(run_store_or_warn(), visible_to=person())
label, choice = pick_model("explain", choices)
if not usable_checkpoint(choice["source"]):
    st.stop()
model = checkpoint_model(choice["source"])
try:
    test_x, test_y, classes = test_images(
        choice["dataset"], choice["data_dir"], model.config.input_size, model.config.in_channels
    )
except CnnLabError as err:
    test_x, classes = None, [str(c) for c in range(model.config.num_classes)]
    st.warning(f"No test split for this model: {err}")

mode = st.segmented_control(
    "Mode", ["Explore", "Predict first"], default="Explore", key="explain.mode", help=PREDICT_FIRST_HELP
)
if mode == "Predict first":
    if test_x is None:
        st.info("Predict first asks about the model's test images, and this model has none here.")
        st.stop()
    _, test_predictions = split_predictions(choice["source"], choice["dataset"], choice["data_dir"])
    predict_first_view(model, test_x, test_y, test_predictions, classes)
    st.stop()

kind = checkpoint_kind(choice["source"])  # digit models get MNIST's recipe, photo models a resize
digit = pick_digit("explain", (test_x, test_y, classes) if test_x is not None else None, kind=kind)
if digit is not None:
    image, steps = digit.image, digit.steps
    probs = probabilities(model, image)
    predicted = int(probs.argmax())
    if steps is not None:
        show_steps(steps, probabilities(model, steps.plain) if not kind.photo else None, classes)
    left, right = st.columns([1, 3])
    left.image(heatmap.grey_rgb(image), caption="model input", width=160, output_format="PNG")
    left.metric("Prediction", classes[predicted], f"{probs.max():.1%} sure", delta_color="off", delta_arrow="off")
    if probs.max() < UNSURE:
        left.warning(f"The model is unsure: its best guess has only {probs.max():.0%}.")
    right.altair_chart(probability_chart(probs, classes), width="stretch")
    with st.expander("Move the input: shift, rotate, scale, thicken, add noise"):
        move_input(model, image, classes)
    explanation(label, choice["source"], image, predicted, classes)

if test_x is not None:
    mistakes(choice, test_x, test_y, classes)
