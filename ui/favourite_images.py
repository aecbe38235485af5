"""Each filter's favourite test images on the Filters page: computed once per checkpoint, then instant."""

import numpy as np
import streamlit as st
import torch

from cnn_core.data import to_float
from cnn_core.errors import CnnLabError
from cnn_core.explain import favourites
from cnn_core.explain import filters as probe
from cnn_core.model.checkpoint import resolve_checkpoint
from ui import computed
from ui.resources import checkpoint_model, test_images

PICTURE_ZOOM = 3  # 28×28 digits drawn at 84 px, the crop beside them as tall


def _activations(source: str, dataset: str, data_dir: str | None, images: np.ndarray) -> favourites.Activations:
    """Every conv filter's strongest response on every test image: one pass per checkpoint, for the whole app."""
    version = resolve_checkpoint(source).stat().st_mtime_ns  # a path rewritten in place is another checkpoint
    return computed.once(
        ("favourites", source, version, dataset, data_dir),
        lambda progress: favourites.strongest_activations(
            checkpoint_model(source), torch.from_numpy(images), progress=progress
        ),
        "Finding every filter's favourite test images…",
    )


def _pictures(images: np.ndarray, picked: np.ndarray, acts, layer: str, channel: int, config) -> list[np.ndarray]:
    floats = to_float(torch.from_numpy(images[picked])).numpy()
    where, width = acts.where[layer][picked, channel], acts.width[layer]
    return [
        favourites.favourite_picture(image, favourites.field_at(config, layer, position, width), PICTURE_ZOOM)
        for image, position in zip(floats, where, strict=True)
    ]


def favourite_images(source: str, layer: str, dataset: str, data_dir: str | None) -> None:
    """The 9 test images a filter of ``layer`` likes most and least, each beside its receptive-field crop."""
    st.subheader("Favourite images")
    model = checkpoint_model(source)
    try:
        images, labels, classes = test_images(dataset, data_dir, model.config.input_size, model.config.in_channels)
    except CnnLabError as err:
        st.info(f"No test images for this model, so no favourites: {err}")
        return
    count = probe.layer(model, layer).out_channels
    channel = st.number_input(f"{layer} filter", 1, count, key=f"filters.favourite.{layer}") - 1
    acts = _activations(source, dataset, data_dir, images)
    size = favourites.field_geometry(model.config)[layer][0]
    st.caption(
        f"Over all {len(images):,} test images: where filter {channel + 1} of {layer} answers most strongly. "
        f"Beside each image, the {size}×{size} patch its strongest output saw (its receptive field, outlined; "
        "black where the field reaches past the edge into the padding)."
    )
    most, least = favourites.favourites(acts, layer, channel)
    for title, picked in (("Most", most), ("Least", least)):
        peaks = acts.peak[layer][picked, channel]
        captions = [f"#{i} · {classes[labels[i]]} · {p:.2f}" for i, p in zip(picked, peaks, strict=True)]
        st.markdown(f"{title} activating")
        pictures = _pictures(images, picked, acts, layer, channel, model.config)
        st.image(pictures, caption=captions, width=pictures[0].shape[1], output_format="PNG")
