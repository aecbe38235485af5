"""A filter's favourite images: the right images, and crops that are exactly what the strongest output saw."""

import numpy as np
import pytest
import torch

from cnn_core.config import ConvBlock, ModelConfig
from cnn_core.data import to_float
from cnn_core.explain import favourites
from cnn_core.model import build_model
from cnn_core.model.checkpoint import load_checkpoint
from cnn_core.shapes import layer_table

ODD = ModelConfig(  # strides, 'same' padding and average pooling: every rule of the field arithmetic at once
    activation="tanh",
    conv=(
        ConvBlock(4, 3, stride=2, padding=1, pool="avg"),
        ConvBlock(5, 3, padding="same", pool="avg"),
        ConvBlock(6, 2),
    ),
    fc=(),
)


@pytest.fixture(scope="module")
def trained():
    return load_checkpoint("lenet5-mnist-max").model


@pytest.fixture(scope="module")
def digits(bundled):
    return bundled.test_x[:300]


def conv_output(model, layer: str, x: torch.Tensor) -> torch.Tensor:
    caught = {}
    hook = dict(model.named_children())[layer].register_forward_hook(lambda _m, _i, out: caught.update(out=out))
    try:
        model(x)
    finally:
        hook.remove()
    return caught["out"]


def gradient_support(model, layer: str, image: torch.Tensor, channel: int, position: int) -> np.ndarray:
    """Input pixels that the output at ``position`` of ``channel`` depends on (a non-zero gradient)."""
    x = to_float(image[None]).requires_grad_(True)
    conv_output(model, layer, x)[0, channel].flatten()[position].backward()
    return x.grad[0].abs().sum(0).numpy() > 0


def test_the_field_sizes_are_the_layer_tables_receptive_fields():
    for config in (ModelConfig(), ODD):
        table = {row.name: row.receptive_field for row in layer_table(config)}
        assert {name: g[0] for name, g in favourites.field_geometry(config).items()} == {
            name: table[name] for name in favourites.field_geometry(config)
        }


@pytest.mark.parametrize("config", [ModelConfig(activation="tanh").with_pooling("avg"), ODD], ids=["lenet5", "odd"])
def test_the_field_is_exactly_the_pixels_the_output_depends_on(config, digits):
    """Average pooling and tanh pass a gradient from every pixel a unit sees: the support is the whole field."""
    model = build_model(config, seed=0)
    acts = favourites.strongest_activations(model, digits[:20])
    for layer in acts.peak:
        for image in (0, 7):
            channel = 1
            position = int(acts.where[layer][image, channel])
            field = favourites.field_at(config, layer, position, acts.width[layer])
            support = gradient_support(model, layer, digits[image], channel, position)
            expected = np.zeros_like(support)
            expected[max(field.top, 0) : field.top + field.size, max(field.left, 0) : field.left + field.size] = True
            assert (support == expected).all(), f"{layer} at {position}: {field}"


def test_the_crop_is_what_the_strongest_conv1_output_computed(trained, digits):
    acts = favourites.strongest_activations(trained, digits)
    conv = trained.conv1
    most, _ = favourites.favourites(acts, "conv1", 2)
    checked = 0
    for index in most:
        field = favourites.field_at(trained.config, "conv1", acts.where["conv1"][index, 2], acts.width["conv1"])
        if min(field.top, field.left) < 0 or max(field.top, field.left) + field.size > 28:
            continue  # at the edge the network saw padding, which is 0 after normalising, not a black pixel
        patch = favourites.crop(to_float(digits[index]).numpy(), field)
        normalised = (torch.from_numpy(patch) - trained.normalize.mean) / trained.normalize.std
        with torch.no_grad():
            value = float((conv.weight[2] * normalised).sum() + conv.bias[2])
        assert value == pytest.approx(float(acts.peak["conv1"][index, 2]), abs=1e-4)
        checked += 1
    assert checked >= 5


def test_favourites_are_the_images_with_the_largest_and_smallest_peaks(trained, digits):
    acts = favourites.strongest_activations(trained, digits, batch_size=64)
    with torch.no_grad():
        direct = conv_output(trained, "conv2", to_float(digits)).flatten(2).amax(2)[:, 5].numpy()
    most, least = favourites.favourites(acts, "conv2", 5)
    assert len(most) == len(least) == 9
    assert np.allclose(np.sort(direct)[::-1][:9], direct[most]) and np.allclose(np.sort(direct)[:9], direct[least])


def test_progress_is_reported_per_batch_and_ends_at_the_total(trained, digits):
    seen = []
    favourites.strongest_activations(trained, digits, batch_size=128, progress=lambda done, total: seen.append(done))
    assert seen == [128, 256, 300]


def test_crops_past_the_edge_are_padded_and_the_picture_outlines_the_field():
    image = np.ones((1, 28, 28), dtype=np.float32)
    patch = favourites.crop(image, favourites.Field(-2, -2, 5))
    assert patch.shape == (1, 5, 5) and patch[0, :2].sum() == 0 and patch[0, 2:, 2:].all()
    picture = favourites.favourite_picture(np.zeros((1, 28, 28), np.float32), favourites.Field(10, 4, 5), zoom=3)
    assert picture.shape[0] == 84 and picture.shape[1] > 2 * 84
    assert (picture[30, 12:27] == favourites.FRAME).all()  # the field's top edge, 5 pixels wide at zoom 3
    colour = favourites.favourite_picture(np.random.default_rng(0).random((3, 32, 32)), favourites.Field(0, 0, 32))
    assert colour.shape[0] == 96
