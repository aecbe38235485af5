"""Filters & feature maps: what each conv layer learned, what it makes of a digit, and how that grew by epoch."""

import numpy as np
import streamlit as st

from cnn_core import heatmap
from cnn_core.charts import filter_chart, layer_change_chart, weight_histogram_chart
from cnn_core.errors import CnnLabError
from cnn_core.explain import filters as probe
from ui.digit_input import pick_digit
from ui.favourite_images import favourite_images
from ui.identity import person
from ui.model_picker import pick_model
from ui.playback import epoch_player
from ui.resources import checkpoint_kind, checkpoint_model, run_store_or_warn, test_images, usable_checkpoint

COLOUR = "colour (RGB)"
MAP_PX = 84  # a feature map's side on screen: 28×28 maps at 3 px a pixel, smaller maps enlarged to match
DOT_PX = 20  # a 1×1 map (conv3's 120 numbers) as a square this big


@st.cache_data(max_entries=16, show_spinner="Reading every epoch's weights…")
def filter_changes(paths: tuple[str, ...]):
    """Every conv layer's change per epoch, read once per run (a layer switch then costs nothing)."""
    return probe.filter_changes(list(paths))


@st.cache_data(max_entries=32, show_spinner=False)
def feature_maps(source: str, image: np.ndarray) -> dict:
    model = checkpoint_model(source)
    return dict(probe.feature_maps(model, probe.as_batch(image, model.config.in_channels)))


def show_feature_maps(maps: dict, scales: dict, columns: int) -> None:
    for name, array in maps.items():
        tiles, side = array.shape[0], array.shape[-1]
        dots = side == 1  # conv3's 120 maps of 1×1 are 120 numbers: a strip of squares
        per_row = full_rows(tiles, columns * 5 if dots else columns)
        scale = f"{scales[name]:.2g}" if scales[name] < 100 else f"{scales[name]:.0f}"  # 120, not 1.2e+02
        st.image(
            heatmap.mosaic(array, scales[name], columns=per_row, zoom=DOT_PX if dots else max(1, MAP_PX // side)),
            caption=f"{name}: {' × '.join(map(str, array.shape))} (colours ±{scale})",
            output_format="PNG",
        )


def full_rows(tiles: int, limit: int) -> int:
    """Tiles per row: the most up to ``limit`` that fill every row (6 maps in two rows of 3 rather than
    4 and 2 beside two empty tiles), unless that makes rows less than half as long."""
    fits = next(c for c in range(min(tiles, limit), 0, -1) if tiles % c == 0)
    return fits if 2 * fits > min(tiles, limit) else min(tiles, limit)


def colour_legend() -> None:
    left, right = st.columns([1, 3])
    left.image(heatmap.colour_bar(240, 14), caption="−scale · 0 · +scale", width="stretch", output_format="PNG")
    right.caption(
        "**Red**: a positive output, the filter's pattern is there. **White**: zero, nothing found. **Blue**: a "
        "negative output, the opposite of the pattern (a ReLU turns it into zero: its maps have no blue). Each "
        "layer has its own scale, written under its maps as ±scale: the strongest colours are that value or beyond."
    )


def colour_filters(model, layer: str) -> None:
    """A first layer that reads RGB: each filter as a small colour picture on its own scale."""
    colour = probe.colour_filters(model, layer)
    zoom = max(1, 60 // colour.pictures.shape[1])
    pictures = [(p * 255).round().astype(np.uint8).repeat(zoom, 0).repeat(zoom, 1) for p in colour.pictures]
    captions = [f"{i}: ±{scale:.2g}" for i, scale in enumerate(colour.scales, start=1)]
    st.caption(
        f"{len(pictures)} filters of {layer} as colours: grey is a zero weight, a bright colour a positive weight "
        "on that channel, its complement a negative one. Each filter on its own scale (±, under it)."
    )
    st.image(pictures, caption=captions, width=zoom * colour.pictures.shape[1], output_format="PNG")


@st.fragment
def filters(source: str, dataset: str, data_dir: str | None) -> None:
    """A conv layer's filters, their weights and their favourite test images."""
    model = checkpoint_model(source)
    st.subheader("Filters")
    left, right = st.columns([3, 1])
    layer = left.selectbox("Conv layer", probe.conv_layers(model), key="filters.layer")
    in_channels = probe.layer(model, layer).in_channels
    view = None
    if in_channels > 1:
        views = [COLOUR] * (in_channels == 3) + ["mean over input channels"]
        views += [f"input channel {c + 1}" for c in range(in_channels)]
        help_text = "A filter has one slice per input channel: see them as colours (RGB), one at a time, or their mean."
        view = right.selectbox("Show", views, key="filters.channel", help=help_text)
    if view == COLOUR:
        colour_filters(model, layer)
    else:
        channel = int(view.rsplit(" ", 1)[1]) - 1 if view and view.startswith("input channel") else None
        grid = probe.filter_grid(model, layer, channel)
        st.caption(
            f"{grid.tiles.shape[0]} filters of {layer}, {grid.view}; red positive, blue negative, "
            f"one scale for the layer (±{grid.scale:.3g})."
        )
        st.altair_chart(filter_chart(probe.filter_frame(grid), grid.scale), width="content")
    st.altair_chart(weight_histogram_chart(probe.weight_histogram(model, layer), layer), width="stretch")
    favourite_images(source, layer, dataset, data_dir)


@st.fragment
def feature_map_view(source: str, dataset: str, data_dir: str | None, pair: dict[str, str]) -> None:
    """One digit through the network, layer by layer; a digit change reruns only this part."""
    st.subheader("Feature maps")
    config = checkpoint_model(source).config
    try:
        test = test_images(dataset, data_dir, config.input_size, config.in_channels)
    except CnnLabError as err:
        test = None
        st.warning(f"No test split for this model: {err}")
    digit = pick_digit("filters", test, by_class=True, kind=checkpoint_kind(source))
    if digit is None:
        return
    image = digit.image
    st.image(heatmap.grey_rgb(image, 4), caption="input (as the model sees it)", output_format="PNG")
    st.caption("After every convolution, activation and pooling layer.")
    colour_legend()
    maps = feature_maps(source, image)
    show_feature_maps(maps, heatmap.scales(maps), columns=8)

    takes = (config.in_channels, config.input_size)  # the bundled pair takes 28×28 grey digits, a photo model not
    same_input = all(
        (checkpoint_model(p).config.in_channels, checkpoint_model(p).config.input_size) == takes for p in pair.values()
    )
    if same_input and st.toggle("Max pooling and average pooling side by side", key="filters.compare"):
        both = {name: feature_maps(path, image) for name, path in pair.items()}
        scales = heatmap.scales(*both.values())  # one scale per layer across both models
        for col, (name, pair_maps) in zip(st.columns(2), both.items(), strict=True):
            with col:
                st.markdown(f"**{name}**")
                show_feature_maps(pair_maps, scales, columns=4)


st.title("🔍 Filters & feature maps")
store = run_store_or_warn()
me = person()
choices = probe.model_choices(store, visible_to=me)
label, choice = pick_model("filters", choices, probe.default_model(choices))
if not usable_checkpoint(choice["source"]):
    st.stop()
source, epoch = choice["source"], None
epochs = tuple(str(p) for p in store.epoch_checkpoints(choice["run_id"])) if choice["run_id"] else ()
if len(epochs) > 1:
    help_text = "Filters, favourite images and feature maps as they were after this epoch of training."
    epoch = epoch_player("filters", len(epochs), help=help_text)
    source = epochs[epoch - 1]
    st.caption(
        "How far each layer's filters moved in each epoch (relative to their size): large early, small once "
        "they settle. The grey line marks the epoch shown."
    )
    st.altair_chart(layer_change_chart(filter_changes(epochs), epoch), width="stretch")

if epoch is not None and not usable_checkpoint(source):  # an epoch's own file may be the damaged one
    st.stop()
filters(source, choice["dataset"], choice["data_dir"])
# this run and its twin, or the bundled pair
pair = probe.pooling_checkpoints(store, choice["run_id"], epoch, visible_to=me)
feature_map_view(source, choice["dataset"], choice["data_dir"], pair)
