"""Shape arithmetic: the one place where output sizes, fits, parameters and MACs are computed.

The article's formula: output = (W - F + 2P) / S + 1. The stride "fits" when (W - F + 2P) is
divisible by S; otherwise PyTorch floors the division and the last rows/columns of the input
are never visited. The model builder, the layer table, the playground and the CLI all call
these functions, and tests hold them against PyTorch's real shapes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cnn_core.errors import InvalidConfig


class Block(Protocol):
    """What the arithmetic reads of a conv block (``cnn_core.config.ConvBlock``; kept apart so the config can
    validate itself with these functions without a cycle)."""

    @property
    def out_channels(self) -> int: ...
    @property
    def kernel_size(self) -> int: ...
    @property
    def stride(self) -> int: ...
    @property
    def padding(self) -> int | str: ...
    @property
    def pool(self) -> str: ...
    @property
    def pool_size(self) -> int: ...
    @property
    def pool_stride(self) -> int: ...
    def check(self, name: str) -> None: ...


class Network(Protocol):
    """What the arithmetic reads of a network (``cnn_core.config.ModelConfig``)."""

    @property
    def in_channels(self) -> int: ...
    @property
    def input_size(self) -> int: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def conv(self) -> Sequence[Block]: ...
    @property
    def fc(self) -> Sequence[int]: ...


def total_padding(padding: int | str, kernel_size: int) -> int:
    """Zeros added across one axis (both sides together): 2P for a number, F - 1 for 'same'."""
    if padding == "valid":
        return 0
    if padding == "same":
        return kernel_size - 1  # PyTorch pads asymmetrically for even filters; the total is F - 1
    return 2 * int(padding)


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int | str = 0) -> int:
    """(W - F + 2P) // S + 1, floored the way PyTorch floors it (may be <= 0 for a bad config)."""
    span = size - kernel_size + total_padding(padding, kernel_size)
    return span // stride + 1 if span >= 0 else 0


def stride_fits(size: int, kernel_size: int, stride: int = 1, padding: int | str = 0) -> bool:
    """True when (W - F + 2P) / S is an integer, i.e. the filter ends exactly on the last column."""
    return dropped_pixels(size, kernel_size, stride, padding) == 0


def dropped_pixels(size: int, kernel_size: int, stride: int = 1, padding: int | str = 0) -> int:
    """Rows (and columns) of the padded input that no window reaches: (W - F + 2P) mod S."""
    span = size - kernel_size + total_padding(padding, kernel_size)
    return span % stride if span >= 0 else 0


def formula_text(size: int, kernel_size: int, stride: int, padding: int | str) -> str:
    """The article's formula with this layer's numbers, e.g. '(28 - 5 + 2·2) / 1 + 1 = 28'."""
    pad = total_padding(padding, kernel_size)
    span = size - kernel_size + pad
    out = conv_output_size(size, kernel_size, stride, padding)
    pad_text = f"2·{pad // 2}" if pad % 2 == 0 else f"{pad}"
    exact = span / stride + 1
    shown = f"{exact:g}" if span % stride == 0 else f"{exact:.2f} → {out} (floored)"
    return f"({size} − {kernel_size} + {pad_text}) / {stride} + 1 = {shown}"


def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    return out_channels * in_channels * kernel_size * kernel_size + (out_channels if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    return in_features * out_features + (out_features if bias else 0)


@dataclass(frozen=True)
class Layer:
    """One row of the layer table."""

    name: str  # conv1, pool1, flatten, fc1, ...
    type: str  # conv, pool, flatten or fc
    output_shape: tuple[int, int, int]  # (C, H, W); fc layers are (features, 1, 1)
    params: int
    macs: int  # multiply-adds for one image
    receptive_field: int  # input pixels (per side) that one output value sees
    kernel_size: int = 0
    stride: int = 0
    padding: int | str = 0
    input_size: int = 0  # H (= W) of this layer's input
    fits: bool = True
    dropped: int = 0  # rows/columns PyTorch drops because the stride does not fit
    formula: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "macs": self.macs,
            "receptive_field": self.receptive_field,
            "fits": self.fits,
            "dropped": self.dropped,
            "formula": self.formula,
        }


def layer_table(cfg: Network) -> list[Layer]:
    """Every layer's output shape, parameters, MACs and receptive field; InvalidConfig if a size breaks."""
    return list(_layers(cfg))


def partial_layer_table(cfg: Any) -> tuple[list[Layer], InvalidConfig | None]:
    """The layers up to the first impossible one, and why it is impossible (None when all fit).

    ``cfg`` needs only a ``Network``'s fields (in_channels, input_size, num_classes, conv, fc): a config that is
    impossible cannot be built as a ModelConfig, and this is what the Train page shows for it."""
    layers: list[Layer] = []
    try:
        for layer in _layers(cfg):
            layers.append(layer)
    except InvalidConfig as err:
        return layers, err
    return layers, None


def _layers(cfg: Network) -> Iterator[Layer]:
    channels, size = cfg.in_channels, cfg.input_size
    rf, jump = 1, 1  # receptive field and the distance between neighbouring outputs, in input pixels
    for i, block in enumerate(cfg.conv, start=1):
        block.check(f"conv{i}")  # a rule of the block itself ('same' padding needs stride 1) stops the table here
        out = _checked_size(f"conv{i}", size, block.kernel_size, block.stride, block.padding)
        rf, jump = rf + (block.kernel_size - 1) * jump, jump * block.stride
        yield (
            Layer(
                f"conv{i}",
                "conv",
                (block.out_channels, out, out),
                conv_params(channels, block.out_channels, block.kernel_size),
                block.out_channels * out * out * channels * block.kernel_size**2,
                rf,
                block.kernel_size,
                block.stride,
                block.padding,
                size,
                stride_fits(size, block.kernel_size, block.stride, block.padding),
                dropped_pixels(size, block.kernel_size, block.stride, block.padding),
                formula_text(size, block.kernel_size, block.stride, block.padding),
            )
        )
        channels, size = block.out_channels, out
        if block.pool != "none":
            out = _checked_size(f"pool{i}", size, block.pool_size, block.pool_stride, 0)
            rf, jump = rf + (block.pool_size - 1) * jump, jump * block.pool_stride
            yield (
                Layer(
                    f"pool{i}",
                    "pool",
                    (channels, out, out),
                    0,
                    0,
                    rf,
                    block.pool_size,
                    block.pool_stride,
                    0,
                    size,
                    stride_fits(size, block.pool_size, block.pool_stride, 0),
                    dropped_pixels(size, block.pool_size, block.pool_stride, 0),
                    formula_text(size, block.pool_size, block.pool_stride, 0),
                )
            )
            size = out
    features = channels * size * size
    if features <= 0:
        raise InvalidConfig("flatten: the flattened size is 0")
    full_rf = min(rf, cfg.input_size)
    yield Layer("flatten", "flatten", (features, 1, 1), 0, 0, full_rf)
    widths = list(cfg.fc) + [cfg.num_classes]
    for j, width in enumerate(widths, start=1):
        yield Layer(f"fc{j}", "fc", (width, 1, 1), linear_params(features, width), features * width, cfg.input_size)
        features = width


def total_params(layers: list[Layer]) -> int:
    return sum(layer.params for layer in layers)


def total_macs(layers: list[Layer]) -> int:
    return sum(layer.macs for layer in layers)


def _checked_size(name: str, size: int, kernel: int, stride: int, padding: int | str) -> int:
    padded = size + total_padding(padding, kernel)
    if kernel > padded:
        raise InvalidConfig(
            f"{name}: filter {kernel}×{kernel} is larger than its {padded}×{padded} (padded) input; "
            f"output size (W − F + 2P)/S + 1 = ({size} − {kernel} + {total_padding(padding, kernel)})/{stride} + 1 ≤ 0"
        )
    return conv_output_size(size, kernel, stride, padding)
