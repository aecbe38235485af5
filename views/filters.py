"""Filters & feature maps: what each conv layer learned, what it makes of a digit, and how that grew by epoch."""

import altair as alt
import numpy as np
import streamlit as st
import torch

from cnn_core import heatmap, inspect
from cnn_core.errors import CnnLabError
from cnn_core.preprocess import digit_steps, load_image
from cnn_core.runs import RunStore
from ui.resources import checkpoint_model, test_images

POOLING_PAIR = ("lenet5-mnist-max", "lenet5-mnist-avg")
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]  # a convenience: load_image checks the real format
CANVAS = {"stroke_width": 16, "stroke_color": "#ffffff", "background_color": "#000000", "width": 224, "height": 224}


@st.cache_data(max_entries=16, show_spinner="Reading every epoch's weights…")
def filter_change(paths: tuple[str, ...], layer: str):
    return inspect.filter_change(list(paths), layer)


def filter_chart(grid: inspect.FilterGrid):
    """One rect per weight on continuous axes, so the empty gaps between tiles stay visible."""
    frame = inspect.filter_frame(grid)
    width, height = frame["x"].max() + 1, frame["y"].max() + 1
    cell = int(np.clip(120 // height, 6, 20))  # px per weight: a row of 6 filters is not a thin strip
    colour = alt.Scale(scheme="redblue", reverse=True, domain=[-grid.scale, grid.scale], domainMid=0)
    return (
        alt.Chart(frame)
        .mark_rect()
        .transform_calculate(x_end="datum.x + 1", y_end="datum.y + 1")
        .encode(
            x=alt.X("x:Q", scale=alt.Scale(domain=[0, width], nice=False), axis=None),
            x2="x_end:Q",
            y=alt.Y("y:Q", scale=alt.Scale(domain=[0, height], nice=False, reverse=True), axis=None),
            y2="y_end:Q",
            color=alt.Color("weight:Q", scale=colour, legend=alt.Legend(gradientLength=max(40, height * cell - 30))),
            tooltip=["filter", alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(width=int(width * cell), height=int(height * cell))
    )


def pick_input(test):
    """The digit to look at: a test digit (by class and number), an upload or a drawing."""
    modes = ("Test digit", "Upload", "Draw") if test is not None else ("Upload", "Draw")
    mode = st.radio("Input", modes, horizontal=True, key="filters.input")
    try:
        if mode == "Test digit":
            x, y, classes = test
            c1, c2 = st.columns(2)
            cls = c1.selectbox("Class", classes, key="filters.class")
            of_class = np.flatnonzero(y == classes.index(cls))
            n = c2.number_input(f"Which {cls} (of {len(of_class)})", 1, len(of_class), key="filters.nth")
            return inspect.digit_at(torch.from_numpy(x), int(of_class[n - 1]))
        if mode == "Upload":
            upload = st.file_uploader("A digit image", type=IMAGE_TYPES, key="filters.upload")
            return digit_steps(load_image(upload.getvalue())).centred if upload is not None else None
        # Imported on demand: the canvas is a v2 custom component that registers itself with the running app.
        from streamlit_drawable_canvas import st_canvas

        drawing = st_canvas(**CANVAS, return_image_data=True, key="filters.canvas")
        drawn = drawing.json_data and drawing.json_data.get("objects")
        return digit_steps(load_image(drawing.image_bytes)).centred if drawn else None
    except CnnLabError as err:
        st.error(str(err))
        return None


def show_feature_maps(maps: dict, scales: dict, columns: int) -> None:
    for name, array in maps.items():
        tiles, side = array.shape[0], array.shape[-1]
        dots = side == 1  # conv3's 120 maps of 1×1 are 120 numbers: a strip of small squares
        zoom = 14 if dots else max(1, 56 // side)  # about 56 px per map otherwise, whatever its size
        st.image(
            heatmap.mosaic(array, scales[name], columns=min(tiles, columns * 5 if dots else columns), zoom=zoom),
            caption=f"{name}: {' × '.join(map(str, array.shape))}",
        )


st.title("🔍 Filters & feature maps")
choices = inspect.model_choices()
label = st.selectbox("Model", list(choices), key="filters.model")
choice = choices[label]
source = choice["source"]
epochs = [str(p) for p in RunStore().epoch_checkpoints(choice["run_id"])] if choice["run_id"] else []
if len(epochs) > 1:
    help_text = "Filters and feature maps as they were after this epoch of training."
    epoch = st.slider("Epoch", 1, len(epochs), len(epochs), key="filters.epoch", help=help_text)
    source = epochs[epoch - 1]
model = checkpoint_model(source)

st.subheader("Filters")
left, right = st.columns([3, 1])
layer = left.selectbox("Conv layer", inspect.conv_layers(model), key="filters.layer")
in_channels = inspect.layer(model, layer).in_channels
in_channel = None
if in_channels > 1:
    views = ["mean over input channels"] + [f"input channel {c + 1}" for c in range(in_channels)]
    help_text = "A deeper filter has one slice per input channel: look at one, or at their mean."
    view = right.selectbox("Show", views, key="filters.channel", help=help_text)
    in_channel = None if view == views[0] else views.index(view) - 1
grid = inspect.filter_grid(model, layer, in_channel)
st.caption(
    f"{grid.tiles.shape[0]} filters of {layer}, {grid.view}; red positive, blue negative, "
    f"one scale for the layer (±{grid.scale:.3g})."
)
st.altair_chart(filter_chart(grid), width="content")
hist = inspect.weight_histogram(model, layer)
st.altair_chart(
    alt.Chart(hist)
    .mark_bar()
    .encode(x=alt.X("start:Q", title=f"{layer} weight"), x2="end:Q", y=alt.Y("count:Q"), y2=alt.datum(0)),
    width="stretch",
    height=180,
)
if len(epochs) > 1:
    st.caption("How far the filters moved in each epoch (relative to their size): large early, small once they settle.")
    st.altair_chart(
        alt.Chart(filter_change(tuple(epochs), layer))
        .mark_line(point=True)
        .encode(x="epoch:O", y=alt.Y("relative change:Q", axis=alt.Axis(format="%"))),
        width="stretch",
        height=180,
    )

st.subheader("Feature maps")
try:
    test = test_images(choice["dataset"], choice["data_dir"])
except CnnLabError as err:
    test = None
    st.warning(f"No test split for this model: {err}")
image = pick_input(test)
if image is not None:
    st.image(heatmap.grey_rgb(image, 4), caption="input (as the model sees it)")
    x = inspect.as_batch(image, model.config.in_channels)
    maps = inspect.feature_maps(model, x)
    st.caption(
        "After every convolution, activation and pooling layer (blue negative, red positive, a scale per layer)."
    )
    show_feature_maps(maps, heatmap.scales(maps), columns=8)

    if st.toggle("Max pooling and average pooling side by side", key="filters.compare"):
        pair = {name: inspect.feature_maps(checkpoint_model(name), inspect.as_batch(image)) for name in POOLING_PAIR}
        scales = heatmap.scales(*pair.values())  # one scale per layer across both models
        for col, (name, pair_maps) in zip(st.columns(2), pair.items(), strict=True):
            with col:
                st.markdown(f"**{name}**")
                show_feature_maps(pair_maps, scales, columns=4)
