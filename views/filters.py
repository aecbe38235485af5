"""Filters & feature maps: what each conv layer learned, what it makes of a digit, and how that grew by epoch."""

import streamlit as st

from cnn_core import heatmap, probe
from cnn_core.charts import filter_change_chart, filter_chart, weight_histogram_chart
from cnn_core.errors import CnnLabError
from ui.digit_input import pick_digit
from ui.resources import checkpoint_model, run_store_or_warn, test_images

POOLING_PAIR = ("lenet5-mnist-max", "lenet5-mnist-avg")


@st.cache_data(max_entries=16, show_spinner="Reading every epoch's weights…")
def filter_change(paths: tuple[str, ...], layer: str):
    return probe.filter_change(list(paths), layer)


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
store = run_store_or_warn()
choices = probe.model_choices(store)
label = st.selectbox("Model", list(choices), key="filters.model")
choice = choices[label]
source = choice["source"]
epochs = [str(p) for p in store.epoch_checkpoints(choice["run_id"])] if choice["run_id"] else []
if len(epochs) > 1:
    help_text = "Filters and feature maps as they were after this epoch of training."
    epoch = st.slider("Epoch", 1, len(epochs), len(epochs), key="filters.epoch", help=help_text)
    source = epochs[epoch - 1]
model = checkpoint_model(source)

st.subheader("Filters")
left, right = st.columns([3, 1])
layer = left.selectbox("Conv layer", probe.conv_layers(model), key="filters.layer")
in_channels = probe.layer(model, layer).in_channels
in_channel = None
if in_channels > 1:
    views = ["mean over input channels"] + [f"input channel {c + 1}" for c in range(in_channels)]
    help_text = "A deeper filter has one slice per input channel: look at one, or at their mean."
    view = right.selectbox("Show", views, key="filters.channel", help=help_text)
    in_channel = None if view == views[0] else views.index(view) - 1
grid = probe.filter_grid(model, layer, in_channel)
st.caption(
    f"{grid.tiles.shape[0]} filters of {layer}, {grid.view}; red positive, blue negative, "
    f"one scale for the layer (±{grid.scale:.3g})."
)
st.altair_chart(filter_chart(probe.filter_frame(grid), grid.scale), width="content")
st.altair_chart(weight_histogram_chart(probe.weight_histogram(model, layer), layer), width="stretch")
if len(epochs) > 1:
    st.caption("How far the filters moved in each epoch (relative to their size): large early, small once they settle.")
    st.altair_chart(filter_change_chart(filter_change(tuple(epochs), layer)), width="stretch")

st.subheader("Feature maps")
try:
    test = test_images(choice["dataset"], choice["data_dir"])
except CnnLabError as err:
    test = None
    st.warning(f"No test split for this model: {err}")
digit = pick_digit("filters", test, by_class=True)
if digit is not None:
    image = digit.image
    st.image(heatmap.grey_rgb(image, 4), caption="input (as the model sees it)")
    x = probe.as_batch(image, model.config.in_channels)
    maps = probe.feature_maps(model, x)
    st.caption(
        "After every convolution, activation and pooling layer (blue negative, red positive, a scale per layer)."
    )
    show_feature_maps(maps, heatmap.scales(maps), columns=8)

    if st.toggle("Max pooling and average pooling side by side", key="filters.compare"):
        pair = {name: probe.feature_maps(checkpoint_model(name), probe.as_batch(image)) for name in POOLING_PAIR}
        scales = heatmap.scales(*pair.values())  # one scale per layer across both models
        for col, (name, pair_maps) in zip(st.columns(2), pair.items(), strict=True):
            with col:
                st.markdown(f"**{name}**")
                show_feature_maps(pair_maps, scales, columns=4)
