"""Predict first on the Explain page: guess the answer and where the model looks, then the reveal and a score.

Everything lives under ``explain.quiz.*`` in the session: another tab has its own questions and score.
"""

import numpy as np
import streamlit as st

from cnn_core import heatmap
from cnn_core.charts import probability_chart, region_chart
from cnn_core.explain import predict_first

KEY = "explain.quiz"


def _next_question(labels: np.ndarray, predictions: np.ndarray) -> None:
    state = st.session_state
    rng = state.setdefault(f"{KEY}.rng", np.random.default_rng())
    state[f"{KEY}.index"] = predict_first.pick_question(labels, predictions, rng)
    for name in ("answer", "region", "revealed"):
        state.pop(f"{KEY}.{name}", None)


def _clicked() -> None:
    """The digit chart's on_select callback: remember the clicked block (a click on nothing keeps the last)."""
    event = st.session_state.get(f"{KEY}.chart") or {}
    picked = (event.get("selection", {}).get("region") or [{}])[0]
    if "region" in picked:
        st.session_state[f"{KEY}.region"] = picked["region"]


def _reveal(model, image: np.ndarray) -> None:
    """The Reveal button's callback: score this question once."""
    state = st.session_state
    probs, attribution = predict_first.reveal(model, image)
    looked = predict_first.looked_at(attribution)
    answer_right = state[f"{KEY}.answer"] == int(probs.argmax())
    state[f"{KEY}.score"] = state.get(f"{KEY}.score", predict_first.Score()).add(
        answer_right, state[f"{KEY}.region"] == looked
    )
    state[f"{KEY}.revealed"] = (probs, attribution, looked)


def _scoreboard() -> None:
    score = st.session_state.get(f"{KEY}.score", predict_first.Score())
    s1, s2, s3 = st.columns(3)
    s1.metric("Questions", score.asked)
    s2.metric("Answers right", f"{score.answers}/{score.asked}")
    s3.metric("Places right", f"{score.places}/{score.asked}")


def _show_reveal(image: np.ndarray, label: int, classes: list[str], column) -> None:
    state = st.session_state
    probs, attribution, looked = state[f"{KEY}.revealed"]
    said, answer, region = int(probs.argmax()), state.get(f"{KEY}.answer"), state.get(f"{KEY}.region")
    verdict = "✅ Right" if answer == said else "❌ Not this time"
    wrong = " — the model is wrong here." if said != label else "."
    column.markdown(
        f"{verdict}: the model answered **{classes[said]}** ({probs.max():.0%} sure); "
        f"the image is labelled **{classes[label]}**{wrong}"  # not "is a 8": no article to get wrong
    )
    place = "✅ Right place" if region == looked else "❌ Another place"
    looked_name, said_name = predict_first.region_name(looked), predict_first.region_name(region)
    column.markdown(f"{place}: it looked most at the **{looked_name}** (you said {said_name}).")
    picture = heatmap.overlay(image, attribution, heatmap.symmetric_scale(attribution))
    caption = "Integrated Gradients: red for its answer, blue against"
    column.image(picture, caption=caption, width=224, output_format="PNG")
    st.altair_chart(probability_chart(probs, classes), width="stretch")


def predict_first_view(model, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray, classes: list[str]):
    """One question at a time: the digit to click on, the answer to pick, Reveal, then Next image."""
    state = st.session_state
    if f"{KEY}.index" not in state or state[f"{KEY}.index"] >= len(labels):
        _next_question(labels, predictions)
    index = state[f"{KEY}.index"]
    image = images[index].astype(np.float32) / 255.0
    image = image[0] if image.shape[0] == 1 else image
    _scoreboard()
    st.markdown(f"**Test image #{index}.** What will the model answer, and where will it look? Guess, then reveal.")
    left, right = st.columns([1, 1])
    region = state.get(f"{KEY}.region")
    chart = region_chart(image if image.ndim == 2 else image.mean(0), predict_first.REGIONS, region)
    left.altair_chart(chart, on_select=_clicked, selection_mode="region", key=f"{KEY}.chart", width="content")
    where = f"Where it will look: **{predict_first.region_name(region)}**" if region else "Click where it will look."
    left.caption(where)
    names = list(range(len(classes)))
    answer = right.pills("The model will answer", names, format_func=lambda c: classes[c], key=f"{KEY}.answer")
    if state.get(f"{KEY}.revealed") is None:
        ready = answer is not None and region is not None
        right.button(
            "Reveal",
            type="primary",
            disabled=not ready,
            key=f"{KEY}.reveal",
            on_click=_reveal,
            args=(model, image),
            help=None if ready else "Pick an answer and click a place on the digit first.",
        )
        return
    _show_reveal(image, int(labels[index]), classes, right)
    st.button("Next image", key=f"{KEY}.next", on_click=_next_question, args=(labels, predictions))
