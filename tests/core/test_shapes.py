"""The layer table must agree with PyTorch for every valid config, and refuse invalid ones by name."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_core.config import ConvBlock, ModelConfig
from cnn_core.errors import InvalidConfig
from cnn_core.model import build_model, count_params
from cnn_core.shapes import conv_output_size, dropped_pixels, formula_text, layer_table, stride_fits, total_params


def test_lenet5_table_matches_the_article():
    rows = {layer.name: layer for layer in layer_table(ModelConfig())}
    assert rows["conv1"].output_shape == (6, 28, 28)
    assert rows["pool1"].output_shape == (6, 14, 14)
    assert rows["conv2"].output_shape == (16, 10, 10)
    assert rows["pool2"].output_shape == (16, 5, 5)
    assert rows["conv3"].output_shape == (120, 1, 1)
    assert rows["fc1"].output_shape[0] == 84 and rows["fc2"].output_shape[0] == 10
    assert total_params(layer_table(ModelConfig())) == 61_706
    assert rows["conv1"].macs == 6 * 28 * 28 * 1 * 5 * 5


def test_output_size_formula_and_fit():
    assert conv_output_size(28, 5, 1, 2) == 28
    assert conv_output_size(28, 5, 2, 0) == 12  # (28 - 5)/2 + 1 = 12.5, floored
    assert not stride_fits(28, 5, 2, 0) and dropped_pixels(28, 5, 2, 0) == 1
    assert stride_fits(27, 5, 2, 0)
    assert conv_output_size(28, 3, 1, "same") == 28 and conv_output_size(28, 4, 1, "same") == 28
    assert "(28 − 5 + 2·0) / 2 + 1 = 12.50 → 12 (floored)" == formula_text(28, 5, 2, 0)


def test_stride_that_does_not_fit_is_flagged_with_dropped_rows():
    cfg = ModelConfig(conv=(ConvBlock(out_channels=4, kernel_size=5, stride=2, pool="none"),), fc=())
    conv1 = layer_table(cfg)[0]
    assert not conv1.fits and conv1.dropped == 1 and conv1.output_shape == (4, 12, 12)


@pytest.mark.parametrize(
    "blocks, message",
    [
        ((ConvBlock(kernel_size=5, stride=2, padding="same"),), "conv1: 'same' padding needs stride 1"),
        (
            (ConvBlock(kernel_size=5), ConvBlock(kernel_size=5), ConvBlock(kernel_size=5), ConvBlock(kernel_size=5)),
            "conv3",
        ),
        ((ConvBlock(kernel_size=40, pool="none"),), "conv1: filter 40×40 is larger"),
        ((ConvBlock(kernel_size=5, pool_size=30),), "pool1"),
        ((ConvBlock(padding="full"),), "conv1.padding: expected"),
        ((ConvBlock(stride=0),), "conv1.stride: expected an integer"),
    ],
)
def test_invalid_configs_are_refused_naming_the_layer(blocks, message):
    with pytest.raises(InvalidConfig, match=message):
        ModelConfig(conv=blocks)


blocks = st.builds(
    ConvBlock,
    out_channels=st.integers(1, 8),
    kernel_size=st.integers(1, 6),
    stride=st.integers(1, 3),
    padding=st.one_of(st.integers(0, 3), st.sampled_from(["valid", "same"])),
    pool=st.sampled_from(["max", "avg", "none"]),
    pool_size=st.integers(1, 3),
    pool_stride=st.integers(1, 3),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    in_channels=st.sampled_from([1, 3]),
    size=st.integers(8, 36),
    conv=st.lists(blocks, min_size=1, max_size=3),
    fc=st.lists(st.integers(1, 16), max_size=2),
)
def test_layer_table_agrees_with_pytorch_for_every_valid_config(in_channels, size, conv, fc):
    conv = [b if b.padding != "same" else ConvBlock(**{**b.__dict__, "stride": 1}) for b in conv]
    try:
        cfg = ModelConfig(in_channels=in_channels, input_size=size, conv=tuple(conv), fc=tuple(fc))
    except InvalidConfig:
        # the table refused it: PyTorch must refuse it too
        with pytest.raises((RuntimeError, ValueError)):
            _pytorch_shapes(in_channels, size, conv, fc)
        return
    model = build_model(cfg)
    table = {layer.name: layer for layer in layer_table(cfg)}
    x = torch.zeros(1, in_channels, size, size)
    for name, module in model.named_children():
        x = module(x)
        if name in table and table[name].type in ("conv", "pool"):
            assert tuple(x.shape[1:]) == table[name].output_shape, name
        if name.startswith("fc"):
            assert x.shape[1] == table[name].output_shape[0]
    assert count_params(model) == total_params(list(table.values()))


def _pytorch_shapes(in_channels, size, conv, fc):
    x = torch.zeros(1, in_channels, size, size)
    channels = in_channels
    for b in conv:
        x = torch.nn.Conv2d(channels, b.out_channels, b.kernel_size, b.stride, b.padding)(x)
        channels = b.out_channels
        if b.pool != "none":
            x = torch.nn.MaxPool2d(b.pool_size, b.pool_stride)(x)
    if x.numel() == 0:
        raise ValueError("empty")
