"""Each filter's favourite images: the test images that excite a conv filter most and least, and where.

One pass over the test split records, for every conv filter and image, the filter's strongest response
(the maximum of its output map) and the position of that maximum. A filter's favourites are then a sort
away, and each one is cropped to the filter's receptive field around that position — the patch of the
input that the winning output value actually saw, computed from the layer table (``cnn_core.shapes``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from cnn_core.config import ModelConfig
from cnn_core.data import to_float
from cnn_core.explain.filters import conv_layers
from cnn_core.shapes import layer_table, total_padding

FRAME = np.array([255, 200, 0], dtype=np.uint8)  # the receptive field's outline: amber shows on black and white


@dataclass(frozen=True, eq=False)
class Activations:
    """Per conv layer: every image's strongest output of every filter, and where in the map it is."""

    peak: dict[str, np.ndarray]  # layer -> (N, filters) float32: the filter's largest output on that image
    where: dict[str, np.ndarray]  # layer -> (N, filters) int32: its position, row * map width + column
    width: dict[str, int]  # layer -> the width of its output map


@dataclass(frozen=True)
class Field:
    """The input pixels one output value sees: a size×size square from (top, left); it may reach past the
    image's edges, where the network saw padding."""

    top: int
    left: int
    size: int


def strongest_activations(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> Activations:
    """One pass over uint8 ``images`` (N, C, H, W) recording every conv filter's maximum and its position.

    Hooks go on a copy: the model may be shared by every session of the app (see ``probe.feature_maps``).
    ``progress(done, total)`` is called after every batch.
    """
    model = copy.deepcopy(model).eval()
    names = conv_layers(model)
    peaks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    wheres: dict[str, list[np.ndarray]] = {name: [] for name in names}
    width: dict[str, int] = {}

    def catch(name: str) -> Callable[[nn.Module, tuple[Any, ...], torch.Tensor], None]:
        def hook(_module: nn.Module, _inputs: tuple[Any, ...], out: torch.Tensor) -> None:
            flat = out.detach().flatten(2)  # (batch, filters, H·W)
            value, index = flat.max(dim=2)
            peaks[name].append(value.float().numpy())
            wheres[name].append(index.int().numpy())
            width[name] = out.shape[-1]

        return hook

    hooks = [dict(model.named_children())[name].register_forward_hook(catch(name)) for name in names]
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                model(to_float(images[start : start + batch_size]))
                if progress is not None:
                    progress(min(start + batch_size, len(images)), len(images))
    finally:
        for hook in hooks:
            hook.remove()
    return Activations(
        {n: np.concatenate(peaks[n]) for n in names}, {n: np.concatenate(wheres[n]) for n in names}, width
    )


def field_geometry(config: ModelConfig) -> dict[str, tuple[int, int, int]]:
    """Per conv layer (size, jump, offset): output (i, j) sees rows i·jump + offset … + size − 1 of the input.

    Walked down the layer table: each conv or pool widens the field by (kernel − 1)·jump, multiplies the
    jump by its stride, and moves the first window left by its padding. The sizes are the table's own
    ``receptive_field`` column; 'same' padding puts the odd zero on the right, as PyTorch does.
    """
    size, jump, offset, geometry = 1, 1, 0, {}
    for row in layer_table(config):
        if row.type not in ("conv", "pool"):
            break
        offset -= (total_padding(row.padding, row.kernel_size) // 2) * jump
        size, jump = size + (row.kernel_size - 1) * jump, jump * row.stride
        assert size == row.receptive_field, f"{row.name}: field {size} ≠ the layer table's {row.receptive_field}"
        if row.type == "conv":
            geometry[row.name] = (size, jump, offset)
    return geometry


def field_at(config: ModelConfig, layer: str, position: int, width: int) -> Field:
    """The receptive field of ``layer``'s output at flat ``position`` (row · width + column)."""
    size, jump, offset = field_geometry(config)[layer]
    row, col = divmod(int(position), width)
    return Field(row * jump + offset, col * jump + offset, size)


def favourites(acts: Activations, layer: str, channel: int, count: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``count`` images that excite filter ``channel`` of ``layer`` most (strongest first) and
    least (weakest first). A stable sort: equal responses keep test-set order."""
    order = np.argsort(-acts.peak[layer][:, channel], kind="stable")
    weakest = np.argsort(acts.peak[layer][:, channel], kind="stable")
    return order[:count], weakest[:count]


def crop(image: np.ndarray, field: Field) -> np.ndarray:
    """The field's patch of a (C, H, W) image, zeros where it reaches past the edges (as padding did)."""
    channels, height, width = image.shape
    patch = np.zeros((channels, field.size, field.size), dtype=image.dtype)
    top, left = max(field.top, 0), max(field.left, 0)
    bottom, right = min(field.top + field.size, height), min(field.left + field.size, width)
    if bottom > top and right > left:
        patch[:, top - field.top : bottom - field.top, left - field.left : right - field.left] = image[
            :, top:bottom, left:right
        ]
    return patch


def _rgb(image: np.ndarray, zoom: int) -> np.ndarray:
    """(C, H, W) floats in [0, 1] as (H·zoom, W·zoom, 3) uint8 (grey repeated on three channels)."""
    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image[:3]
    pixels = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
    return cast(np.ndarray, pixels.repeat(zoom, axis=0).repeat(zoom, axis=1))


def favourite_picture(image: np.ndarray, field: Field, zoom: int = 3) -> np.ndarray:
    """The whole image with the field outlined, and beside it the crop enlarged to the same height."""
    whole = _rgb(image, zoom)
    side = whole.shape[0]
    top, left = field.top * zoom, field.left * zoom
    bottom, right = top + field.size * zoom - 1, left + field.size * zoom - 1
    rows, cols = slice(max(top, 0), min(bottom, side - 1) + 1), slice(max(left, 0), min(right, side - 1) + 1)
    for edge, inside in ((top, 0 <= top < side), (bottom, 0 <= bottom < side)):
        if inside:
            whole[edge, cols] = FRAME
    for edge, inside in ((left, 0 <= left < side), (right, 0 <= right < side)):
        if inside:
            whole[rows, edge] = FRAME
    patch = crop(image, field)
    enlarged = _rgb(patch, max(1, side // field.size))
    enlarged = np.pad(enlarged, ((0, side - enlarged.shape[0]), (0, side - enlarged.shape[1]), (0, 0)))
    gap = np.full((side, max(2, zoom * 2), 3), 255, dtype=np.uint8)
    return np.concatenate([whole, gap, enlarged], axis=1)
