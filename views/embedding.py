"""Embedding: the test set as the network's last hidden layer sees it, in 2-D, epoch by epoch."""

import numpy as np
import streamlit as st
import torch

from cnn_core.charts import embedding_chart, separation_chart
from cnn_core.errors import CnnLabError
from cnn_core.explain import embedding
from cnn_core.explain import filters as probe
from cnn_core.model import build_model
from cnn_core.model.checkpoint import load_checkpoint
from ui import computed
from ui.identity import person
from ui.model_picker import pick_model
from ui.playback import epoch_player
from ui.resources import checkpoint_model, run_store_or_warn, test_images

PREVIEW_ZOOM = 6


def projections(sources: tuple[str, ...], seed: int, dataset: str, data_dir: str | None, images, labels):
    """Every epoch's projection of one run, and the separation of the same network untrained (its initial
    weights, rebuilt from its seed): computed once for the whole app, with a progress bar the first time."""

    def compute(progress):
        models = [(epoch, load_checkpoint(s).model) for epoch, s in enumerate(sources, start=1)]
        models.append((0, build_model(models[0][1].config, seed=seed)))
        points, scores = embedding.frames(models, torch.from_numpy(images), labels, progress)
        return points[points["epoch"] > 0], scores[scores["epoch"] > 0], float(scores["separation"].iloc[-1])

    key = ("embedding", sources, seed, dataset, data_dir)
    return computed.once(key, compute, "Projecting the test set, epoch by epoch…")


def clicked(event) -> int | None:
    """The test image of the clicked dot, from the chart's selection (None before any click)."""
    points = (event or {}).get("selection", {}).get("point") or []
    return int(points[0]["index"]) if points and "index" in points[0] else None


def preview(images: np.ndarray, labels: np.ndarray, classes: list[str], index: int) -> None:
    picture = images[index].transpose(1, 2, 0)
    picture = picture[..., 0] if picture.shape[-1] == 1 else picture
    st.image(
        picture.repeat(PREVIEW_ZOOM, 0).repeat(PREVIEW_ZOOM, 1),
        caption=f"test image #{index} · {classes[int(labels[index])]}",
    )


st.title("🌌 Embedding")
st.caption(
    "Each dot is a test image, placed by the features of the network's last hidden layer (what the output layer "
    "turns into class scores), projected onto their two main directions (PCA). Coloured by the true class: "
    "when the network has learned, each class gathers in its own place. Click a dot to see its image."
)
store = run_store_or_warn()
me = person()
choices = probe.model_choices(store, visible_to=me)
label, choice = pick_model("embedding", choices, probe.default_model(choices))
if st.session_state.get("embedding.shown") != choice["source"]:  # another model: its last epoch, no dot chosen
    st.session_state["embedding.shown"] = choice["source"]
    for key in ("embedding.at", "embedding.playing", "embedding.chart"):
        st.session_state.pop(key, None)
config = checkpoint_model(choice["source"]).config
try:
    images, labels, classes = test_images(choice["dataset"], choice["data_dir"], config.input_size, config.in_channels)
except CnnLabError as err:
    st.error(f"No test images for this model: {err}")
    st.stop()

saved = tuple(str(p) for p in store.epoch_checkpoints(choice["run_id"])) if choice["run_id"] else ()
sources = saved or (str(choice["source"]),)
# the bundled models were trained from seed 0
seed = store.get(choice["run_id"], visible_to=me).seed if choice["run_id"] else 0
points, scores, untrained = projections(sources, seed, choice["dataset"], choice["data_dir"], images, labels)
epoch = epoch_player("embedding", len(sources)) if len(sources) > 1 else 1
frame = points[points["epoch"] == epoch].assign(**{"class": lambda f: [classes[int(i)] for i in f["label"]]})
score = float(scores.loc[scores["epoch"] == epoch, "separation"].iloc[0])

left, right = st.columns([3, 1])
with left:
    title = f"epoch {epoch} of {len(sources)}" if len(sources) > 1 else label
    event = st.altair_chart(
        embedding_chart(frame.drop(columns="label"), classes, title),
        on_select="rerun",
        selection_mode="point",
        key="embedding.chart",
        width="stretch",
    )
with right:
    st.metric(
        "Classes apart",
        f"{score:.2f}",
        f"{score - untrained:+.2f} from untrained ({untrained:.2f})",
        help="Spread between the class centres over the spread within the classes, in this picture: "
        "near 0 when the classes lie on top of each other, large when each is a tight group of its own.",
    )
    index = clicked(event)
    if index is None:
        st.caption("Click a dot to see its image here.")
    else:
        preview(images, labels, classes, index)
if len(sources) > 1:
    st.caption("How far apart the classes are at each epoch (the grey line marks the epoch shown).")
    st.altair_chart(separation_chart(scores, epoch), width="stretch")
st.caption(
    f"{len(frame):,} of {len(images):,} test images" + (" (a random sample)." if len(frame) < len(images) else ".")
)
