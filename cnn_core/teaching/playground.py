"""Convolution and pooling playground: the article's filter, stride, padding and pooling, made visible.

Every number comes from PyTorch itself (``F.conv2d``, ``F.max_pool2d``, ``F.avg_pool2d``) and every
size, fit check and formula from ``cnn_core.shapes``; this module only prepares inputs and filters
and picks out one window so a page can show the multiply-and-sum that produced one output value.
Images are float32 arrays (C, H, W) in [0, 1] with C = 1 (grey) or 3 (RGB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cnn_core import shapes
from cnn_core.config import ConvBlock
from cnn_core.data import Dataset
from cnn_core.data.preprocess import Source, load_image
from cnn_core.errors import InvalidConfig
from cnn_core.heatmap import upscale

_BLUR = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256  # binomial ≈ Gaussian with σ ≈ 1
_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
PRESETS: dict[str, np.ndarray] = {  # name → a 2-D filter; float32 so sums match PyTorch's float32
    name: np.asarray(k, dtype=np.float32)
    for name, k in {
        "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
        "box blur": np.full((3, 3), 1 / 9),
        "Gaussian blur": _BLUR,
        "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
        "Laplacian edge": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
        "Sobel x": _SOBEL_X,
        "Sobel y": _SOBEL_X.T,
        "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    }.items()
}
# The article's sepia: a 3×3 matrix mixing (R, G, B) into new (R, G, B) at every pixel, i.e. three
# 1×1 filters spanning the three colour channels (the classic Microsoft sepia tone values).
SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32)
MAX_WEIGHT = 1000.0  # a hand-typed weight beyond this only overflows the picture, it teaches nothing
DISPLAY = 280  # pixels: pictures are enlarged by whole pixels (sharp squares) to about this size
PATTERNS = ("checkerboard", "stripes", "square", "cross", "gradient")
Kernels = np.ndarray | str | Sequence[np.ndarray]  # one 2-D filter, "sepia", or several 2-D filters


@dataclass(frozen=True)
class AxisFacts:
    """The shape arithmetic along one axis (rows or columns), all from cnn_core.shapes."""

    size: int  # input pixels
    padded: int  # input plus zeros on both sides
    output: int
    fits: bool
    dropped: int  # last rows/columns of the padded input that no window reaches
    formula: str


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class ConvResult:
    output: np.ndarray  # (filters, H', W'): PyTorch's F.conv2d output
    weights: np.ndarray  # (filters, C, k, k): what was passed to F.conv2d
    stride: int
    pad: tuple[int, int]  # zeros before and after, on each axis
    rows: AxisFacts
    cols: AxisFacts


@dataclass(frozen=True, eq=False)
class Window:
    """One output value taken apart: the input under the filter, the weights, their products."""

    pixels: np.ndarray  # (C, k, k) padded input under the filter
    weights: np.ndarray  # (C, k, k)
    products: np.ndarray  # pixels * weights
    total: float  # products.sum(): the output value (there is no bias)
    top: int  # the window's first row and column in the padded input
    left: int


@dataclass(frozen=True, eq=False)
class PoolResult:
    output: np.ndarray  # (C, H', W')
    kind: str
    rows: AxisFacts
    cols: AxisFacts


def kernel_weights(kernels: Kernels, channels: int) -> np.ndarray:
    """Filters as F.conv2d weights (filters, C, k, k).

    A filter spans all input channels, as in a conv layer; a 2-D preset is spread evenly over them
    (weight / C on each), so on RGB it sees the mean of R, G and B. Several filters of one layer share
    one size: smaller ones are centred in zeros. Sepia on a grey input mixes (g, g, g).
    """
    if isinstance(kernels, str):
        if kernels in PRESETS:
            return kernel_weights(PRESETS[kernels], channels)
        if kernels != "sepia":
            raise InvalidConfig(f"unknown filter {kernels!r}; choose one of {', '.join(PRESETS)} or sepia")
        mix = SEPIA if channels == 3 else SEPIA.sum(axis=1, keepdims=True)
        return mix.reshape(3, -1, 1, 1).copy()
    one = isinstance(kernels, np.ndarray) and kernels.ndim == 2
    stack = [np.asarray(k, dtype=np.float32) for k in ([kernels] if one else kernels)]
    if not stack:
        raise InvalidConfig("choose at least one filter")
    size = max(k.shape[0] for k in stack)
    weights = np.zeros((len(stack), channels, size, size), dtype=np.float32)
    for i, k in enumerate(stack):
        at = (size - k.shape[0]) // 2
        weights[i, :, at : at + k.shape[0], at : at + k.shape[1]] = k / channels
    return weights


def kernel_from_cells(cells: Sequence[Sequence[object]]) -> np.ndarray:
    """A square filter typed by hand; InvalidConfig names the first cell that is not a number.

    Cells are counted from 0, as the grid the user types into labels its rows and columns (and as every
    other position on the page, and PyTorch, counts).
    """
    rows = [list(r) for r in cells]
    if not rows or any(len(r) != len(rows) for r in rows):
        raise InvalidConfig("the filter must be square (3×3 or 5×5)")
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                number = math.nan
            if math.isnan(number):
                raise InvalidConfig(f"filter cell (row {i}, column {j}) is empty or not a number")
            if abs(number) > MAX_WEIGHT:
                raise InvalidConfig(
                    f"filter cell (row {i}, column {j}) is {number:g}: "
                    f"keep weights between −{MAX_WEIGHT:g} and {MAX_WEIGHT:g}"
                )
    return np.array(rows, dtype=np.float32)


def pad_sides(padding: int | str, kernel_size: int) -> tuple[int, int]:
    """Zeros before and after on one axis. 'same' with an even filter pads one more after, as PyTorch does."""
    total = shapes.total_padding(padding, kernel_size)
    return total // 2, total - total // 2


def _axis(size: int, kernel: int, stride: int, padding: int | str) -> AxisFacts:
    """Every fact along one axis from cnn_core.shapes, the one home of the formula: never re-derived here."""
    args = (size, kernel, stride, padding)
    return AxisFacts(
        size,
        size + shapes.total_padding(padding, kernel),
        shapes.conv_output_size(*args),
        shapes.stride_fits(*args),
        shapes.dropped_pixels(*args),
        shapes.formula_text(*args),
    )


def _checked_axes(
    shape: tuple[int, ...], kernel: int, stride: int, padding: int | str, what: str
) -> tuple[AxisFacts, AxisFacts]:
    """Validate stride and padding the way a conv layer does, then the filter against the padded input."""
    ConvBlock(kernel_size=kernel, stride=stride, padding=padding).check(what)
    rows, cols = (_axis(n, kernel, stride, padding) for n in shape[-2:])
    if kernel > min(rows.padded, cols.padded):
        padded = "padded " if rows.padded > rows.size or cols.padded > cols.size else ""
        raise InvalidConfig(
            f"{what}: the {kernel}×{kernel} window is larger than the {rows.padded}×{cols.padded} "
            f"{padded}input, so there is no output"
        )
    return rows, cols


def check_settings(stride: int, padding: int | str) -> None:
    """InvalidConfig when stride and padding break a rule that holds whatever the filter ('same' needs stride 1),
    checked as a conv layer checks them; a 1×1 filter stands in for the one still to be chosen."""
    ConvBlock(kernel_size=1, stride=stride, padding=padding).check("filter")


def convolve(image: np.ndarray, kernels: Kernels, stride: int = 1, padding: int | str = 0) -> ConvResult:
    """Slide the filter(s) over the image with PyTorch's F.conv2d; InvalidConfig for a setting with no output."""
    weights = kernel_weights(kernels, image.shape[0])
    k = weights.shape[-1]
    rows, cols = _checked_axes(image.shape, k, stride, padding, "filter")
    out = F.conv2d(
        torch.from_numpy(np.ascontiguousarray(image, np.float32))[None],
        torch.from_numpy(weights),
        stride=stride,
        padding=padding,
    )
    return ConvResult(out[0].numpy(), weights, stride, pad_sides(padding, k), rows, cols)


def stride_fit(result: ConvResult) -> tuple[bool, str]:
    """Whether the stride fits on both axes, and one sentence saying so (or which rows and columns are lost)."""
    if result.rows.fits and result.cols.fits:
        return True, f"Stride {result.stride} fits: (W − F + 2P) / S is a whole number, every pixel is reached."
    dropped = ((result.rows.dropped, "row"), (result.cols.dropped, "column"))
    lost = [f"the last {n} {word}{'s' if n != 1 else ''}" for n, word in dropped if n]
    return False, (
        f"Stride {result.stride} does not fit: PyTorch drops {' and '.join(lost)} of the padded input "
        "(shaded orange); no window ever reaches them."
    )


def padded_input(image: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    before, after = pad
    return np.pad(image, ((0, 0), (before, after), (before, after)))


def window_at(
    image: np.ndarray, kernels: Kernels, stride: int, padding: int | str, row: int, col: int, filter_index: int = 0
) -> Window:
    """The multiply-and-sum behind output value [filter_index, row, col]: pixels ⊙ weights, summed."""
    return window_of(convolve(image, kernels, stride, padding), image, row, col, filter_index)


def window_of(result: ConvResult, image: np.ndarray, row: int, col: int, filter_index: int = 0) -> Window:
    """``window_at`` for a convolution already done (a page steps through positions without redoing it)."""
    if not (0 <= row < result.rows.output and 0 <= col < result.cols.output):
        size = f"{result.rows.output}×{result.cols.output}"
        raise InvalidConfig(f"output position ({row}, {col}) is outside the {size} output")
    weights = result.weights[filter_index]
    k = weights.shape[-1]
    top, left = row * result.stride, col * result.stride  # in padded coordinates: output i starts at i·S
    pixels = padded_input(image, result.pad)[:, top : top + k, left : left + k].astype(np.float32)
    products = pixels * weights
    return Window(pixels, weights, products, float(products.sum(dtype=np.float64)), top, left)


def pool(feature_map: np.ndarray, size: int, stride: int, kind: str) -> PoolResult:
    """Max or average pooling with PyTorch's F.max_pool2d / F.avg_pool2d (no padding, as in LeNet-5)."""
    if kind not in ("max", "avg"):
        raise InvalidConfig(f"pooling must be 'max' or 'avg', not {kind!r}")
    rows, cols = _checked_axes(feature_map.shape, size, stride, 0, "pooling")
    x = torch.from_numpy(np.ascontiguousarray(feature_map, np.float32))[None]
    out = F.max_pool2d(x, size, stride) if kind == "max" else F.avg_pool2d(x, size, stride)
    return PoolResult(out[0].numpy(), kind, rows, cols)


def pool_window(feature_map: np.ndarray, size: int, stride: int, row: int, col: int) -> np.ndarray:
    """The (C, size, size) values that pooled output [row, col] takes its max or average of."""
    return feature_map[:, row * stride : row * stride + size, col * stride : col * stride + size]


@dataclass(frozen=True, eq=False)
class PoolComparison:
    """Max and average pooling of one feature map, and the window where they disagree most."""

    max: PoolResult
    avg: PoolResult
    row: int  # the pooled position where max − average (summed over channels) is largest
    col: int
    values: np.ndarray  # (C, size, size): the feature-map values under that window


def compare_pooling(feature_map: np.ndarray, size: int, stride: int) -> PoolComparison:
    """Both poolings of a feature map, and the window that shows best how they differ."""
    biggest, mean = pool(feature_map, size, stride, "max"), pool(feature_map, size, stride, "avg")
    gap = (biggest.output - mean.output).sum(axis=0)
    row, col = (int(i) for i in np.unravel_index(int(np.argmax(gap)), gap.shape))
    return PoolComparison(biggest, mean, row, col, pool_window(feature_map, size, stride, row, col))


def strongest(output: np.ndarray, channel: int = 0) -> tuple[int, int]:
    """The output position with the largest magnitude: where a page opens the step-through, not a blank corner."""
    row, col = np.unravel_index(int(np.abs(output[channel]).argmax()), output.shape[1:])
    return int(row), int(col)


def pattern(name: str, size: int = 28) -> np.ndarray:
    """A small generated grey image (1, size, size): edges and stripes make filters easy to read."""
    y, x = np.mgrid[0:size, 0:size]
    cell = max(2, size // 7)  # about seven cells or stripes across, whatever the size
    middle = abs(y - (size - 1) / 2), abs(x - (size - 1) / 2)
    shapes = {
        "checkerboard": (y // cell + x // cell) % 2 == 1,
        "stripes": (x // cell) % 2 == 1,
        "square": (middle[0] < size / 4) & (middle[1] < size / 4),
        "cross": (middle[0] < size / 10) | (middle[1] < size / 10),
        "gradient": x / max(size - 1, 1),
    }
    if name not in shapes:
        raise InvalidConfig(f"pattern must be one of {', '.join(PATTERNS)}, not {name!r}")
    return cast(np.ndarray, shapes[name].astype(np.float32)[None])


def dataset_digit(dataset: Dataset, index: int) -> tuple[np.ndarray, str]:
    """Test digit number `index` as (C, H, W) floats in [0, 1], with its class name."""
    if not 0 <= index < len(dataset.test_x):
        raise InvalidConfig(f"digit index must be between 0 and {len(dataset.test_x) - 1}")
    return dataset.test_x[index].numpy().astype(np.float32) / 255.0, dataset.classes[int(dataset.test_y[index])]


def upload_image(source: Source, max_side: int = 64) -> np.ndarray:
    """An untrusted upload, decoded safely (BadImage otherwise), colour kept, at most max_side pixels long.

    Small keeps the page fast and each pixel's number readable; an image whose R, G and B are
    equal everywhere becomes one grey channel, so its numbers are not shown three times.
    """
    image = load_image(source)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
    grey = bool((array == array[:1]).all())
    return np.ascontiguousarray(array[:1] if grey else array)


def to_rgb(maps: np.ndarray) -> np.ndarray:
    """(C, H, W) values → (H, W, 3) uint8 for display.

    Three channels are a colour image (clipped to [0, 1]). One channel is grey when it has no
    negative values (scaled down if above 1), else red (positive) / white (0) / blue (negative),
    scaled by the largest magnitude, so an edge filter's sign stays visible.
    """
    if maps.shape[0] == 3:
        rgb = np.clip(maps.transpose(1, 2, 0), 0, 1)
    elif maps.min() >= 0:
        rgb = np.repeat(maps[0][..., None] / max(float(maps.max()), 1.0), 3, axis=2)
    else:
        t = maps[0] / max(float(np.abs(maps).max()), 1e-12)
        rgb = np.stack([1 - np.clip(-t, 0, 1), 1 - np.abs(t), 1 - np.clip(t, 0, 1)], axis=2)
    return cast(np.ndarray, np.round(rgb * 255).astype(np.uint8))


def input_overlay(image: np.ndarray, result: ConvResult, scale: int, window: Window | None = None) -> np.ndarray:
    """The padded input, upscaled: padding tinted blue, rows/columns PyTorch drops tinted orange,
    and the current window outlined in yellow."""
    before = result.pad[0]
    rgb = to_rgb(padded_input(image, result.pad)).astype(np.float32)
    h, w = rgb.shape[:2]
    inside = np.zeros((h, w), dtype=bool)
    inside[before : before + image.shape[1], before : before + image.shape[2]] = True
    rgb[~inside] = 0.6 * rgb[~inside] + 0.4 * np.array([90, 150, 255])
    dropped = np.zeros((h, w), dtype=bool)
    dropped[h - result.rows.dropped :] = True  # an empty slice when nothing is dropped
    dropped[:, w - result.cols.dropped :] = True
    rgb[dropped] = 0.4 * rgb[dropped] + 0.6 * np.array([255, 120, 0])
    big = upscale(rgb, scale).astype(np.uint8)
    if window is not None:
        outline(big, window.top, window.left, window.weights.shape[-1], scale)
    return big


def enlarge(rgb: np.ndarray, pixel: tuple[int, int] | None = None, size: int = DISPLAY) -> np.ndarray:
    """(H, W, 3) enlarged by whole pixels (sharp squares) to about `size`; `pixel` (row, column) outlined."""
    scale = max(1, size // max(rgb.shape[:2]))
    big = upscale(rgb, scale)
    return big if pixel is None else outline(big, *pixel, 1, scale)


def outline(big: np.ndarray, top: int, left: int, size: int, scale: int) -> np.ndarray:
    """Draw a yellow square around pixels [top:top+size, left:left+size] of an image enlarged `scale` times."""
    line = max(1, scale // 3)  # thick enough to see, thin enough to leave the pixels inside visible
    box = big[top * scale : (top + size) * scale, left * scale : (left + size) * scale]
    for edge in (box[:line], box[-line:], box[:, :line], box[:, -line:]):
        edge[...] = (255, 215, 0)
    return big
