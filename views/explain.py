"""Explain: what the model sees, what it answers, which pixels drove the answer, and which map to trust."""

import numpy as np
import streamlit as st
import torch

from cnn_core import explain, faithfulness, heatmap, probe
from cnn_core.charts import confusion_chart, deletion_chart, probability_chart
from cnn_core.compare import confusion_matrix
from cnn_core.errors import CnnLabError
from cnn_core.predict import probabilities
from ui.digit_input import open_test_digit, pick_digit
from ui.resources import checkpoint_model, run_store_or_warn, test_images

UNSURE = 0.6  # below this top probability the page warns that the model is guessing
OTHER_POOLING = {"lenet5-mnist-max": "lenet5-mnist-avg", "lenet5-mnist-avg": "lenet5-mnist-max"}
SCORES_HELP = (
    "Lower is better for infidelity (does the map predict the effect of blacking out a square?), sensitivity "
    "(does it jump when the input barely moves?) and deletion area (does removing the top pixels kill the class "
    "fast?). Spearman ρ with a randomly initialised copy of the model should be near 0: a map that stays the same "
    "is not explaining what the model learned (Adebayo et al., 2018)."
)
DELTA_HELP = "Captum's convergence delta: the map's sum minus the score change it should add up to; near 0 is complete."


@st.cache_data(max_entries=8, show_spinner="Testing the model on the test split…")
def split_predictions(source: str, name: str, data_dir: str | None):
    x, y, _ = test_images(name, data_dir)
    return probe.split_predictions(checkpoint_model(source), torch.from_numpy(x), torch.from_numpy(y))


@st.cache_data(max_entries=32, show_spinner=False)
def attributions(source: str, image: np.ndarray, target: int, methods: tuple, options: dict) -> dict:
    x = probe.as_batch(image, checkpoint_model(source).config.in_channels)
    return {
        k: v.numpy() for k, v in explain.attribute_all(checkpoint_model(source), x, target, methods, options).items()
    }


@st.cache_data(max_entries=16, show_spinner="Scoring faithfulness…")
def faithfulness_report(source: str, image: np.ndarray, target: int, methods: tuple, options: dict):
    x = probe.as_batch(image, checkpoint_model(source).config.in_channels)
    maps = {k: torch.as_tensor(v) for k, v in attributions(source, image, target, methods, options).items()}
    rows, curves = faithfulness.report(checkpoint_model(source), x, target, maps, options)
    return rows, curves, faithfulness.completeness_all(checkpoint_model(source), x, target, maps, options)


def show_steps(steps, plain: np.ndarray, classes: list[str]) -> None:
    st.markdown(
        "**What the model sees**: MNIST's own recipe — ink bright on black, cropped, scaled into 20×20, centred."
    )
    pictures = [np.asarray(steps.original), steps.grey, steps.cropped, steps.boxed, steps.centred, steps.plain]
    grey = "grey, inverted" if steps.inverted else "grey"
    plain_text = f"plain resize → {classes[int(plain.argmax())]} ({plain.max():.0%})"
    names = ["original", grey, "cropped", "20×20", "centred 28×28", plain_text]
    for col, picture, name in zip(st.columns(6), pictures, names, strict=True):
        col.image(heatmap.thumbnail(picture), caption=name, width="stretch")


def method_options(methods: tuple, model) -> dict:
    """A widget for every declared option of the chosen methods."""
    options: dict = {}
    for name in methods:
        st.caption(f"**{explain.METHODS[name].title}**: {explain.METHODS[name].about}")
        for o in explain.options_for(name, model):
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
            col.image(heatmap.overlay(image, maps[name], scales[name]), width="stretch", caption=caption)


st.title("💡 Explain")
choices = probe.model_choices(run_store_or_warn())
label = st.selectbox("Model", list(choices), key="explain.model")
choice = choices[label]
model = checkpoint_model(choice["source"])
try:
    test_x, test_y, classes = test_images(choice["dataset"], choice["data_dir"])
except CnnLabError as err:
    test_x, classes = None, [str(c) for c in range(model.config.num_classes)]
    st.warning(f"No test split for this model: {err}")

digit = pick_digit("explain", (test_x, test_y, classes) if test_x is not None else None)
if digit is not None:
    image, steps = digit.image, digit.steps
    probs = probabilities(model, image)
    predicted = int(probs.argmax())
    if steps is not None:
        show_steps(steps, probabilities(model, steps.plain), classes)
    left, right = st.columns([1, 3])
    left.image(heatmap.grey_rgb(image), caption="model input", width=160)
    left.metric("Prediction", classes[predicted], f"{probs.max():.1%} sure", delta_color="off", delta_arrow="off")
    if probs.max() < UNSURE:
        left.warning(f"The model is unsure: its best guess has only {probs.max():.0%}.")
    right.altair_chart(probability_chart(probs, classes), width="stretch")

    st.subheader("Which pixels drove the answer")
    c1, c2, c3 = st.columns([1, 2, 1])
    picked = c1.selectbox("Explain class", ["predicted"] + classes, key="explain.target")
    target = predicted if picked == "predicted" else classes.index(picked)
    titles = {name: m.title for name, m in explain.METHODS.items()}
    methods = tuple(
        c2.multiselect("Methods", list(titles), list(titles), format_func=titles.get, key="explain.methods")
    )
    scale_help = "Shared: one scale for all maps. Per method: each its own (the same for both models when comparing)."
    shared = c3.radio("Colour scale", ["per method", "shared"], key="explain.scale", help=scale_help) == "shared"
    with st.expander("Method settings"):
        options = method_options(methods, model)
    other = OTHER_POOLING.get(choice["source"])
    compare = other is not None and st.toggle(f"Compare with {other}", key="explain.compare")
    if methods:
        maps = attributions(choice["source"], image, target, methods, options)
        other_maps = attributions(other, image, target, methods, options) if compare else {}
        scales = heatmap.scales(maps, *([other_maps] if compare else []), shared=shared)  # across both models
        st.caption(f"Red pixels push towards class {classes[target]}, blue ones against it; white is neutral.")
        heatmap_row(label, image, maps, scales)
        if compare:
            heatmap_row(other, image, other_maps, scales)

        if st.toggle("Score faithfulness", value=True, key="explain.faithfulness"):
            rows, curves, complete = faithfulness_report(choice["source"], image, target, methods, options)
            number = st.column_config.NumberColumn(format="%.3f")
            st.dataframe(rows, hide_index=True, column_config=dict.fromkeys(rows.columns[1:], number))
            st.caption(SCORES_HELP)
            for name, c in complete.items():
                st.caption(
                    f"Completeness of {explain.METHODS[name].title}: the map sums to {c.total:.3f}, the class score "
                    f"changed by {c.change:+.3f} from the baseline; convergence Δ = {c.delta:+.3f} ({c.relative:.1%})",
                    help=DELTA_HELP,
                )
            st.altair_chart(deletion_chart(curves), width="stretch")

if test_x is not None:
    st.subheader("Where the model goes wrong")
    accuracy, predictions = split_predictions(choice["source"], choice["dataset"], choice["data_dir"])
    counts = confusion_matrix(test_y, predictions, len(classes))
    st.caption(f"{accuracy:.2%} right on {len(test_y):,} test digits. Click a cell to list those mistakes.")
    matrix = confusion_chart(counts, classes, select=True)
    event = st.altair_chart(matrix, on_select="rerun", selection_mode="cell", key="explain.confusion", width="content")
    chosen = (event.selection.get("cell") or [{}])[0] if event else {}  # class names of the clicked cell
    true, said = (classes.index(chosen[k]) if k in chosen else None for k in ("true", "predicted"))
    wrong = probe.misclassified(test_y, predictions, true, said)
    where = f" {chosen['true']}s taken for {chosen['predicted']}" if chosen else ""
    st.caption(f"{len(wrong)} misclassified{where}" + (": the first 16" if len(wrong) > 16 else ""))
    for start in range(0, min(len(wrong), 16), 8):
        for col, i in zip(st.columns(8), wrong[start : start + 8], strict=False):
            caption = f"#{i}: {classes[test_y[i]]} → {classes[predictions[i]]}"
            col.image(heatmap.grey_rgb(test_x[i], 2), caption=caption)
            col.button("Open", key=f"explain.open.{i}", on_click=open_test_digit, args=("explain", int(i)))
