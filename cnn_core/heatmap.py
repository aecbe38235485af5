"""Draw arrays as pictures: attributions, filters and feature maps on a diverging colour map.

Blue is negative, white is zero, red is positive, and the colour scale is symmetric, so zero always
looks the same. The scale is a choice, not a side effect: one shared scale lets maps be compared
(a method that attributes little looks pale), per-map scales show each map's own pattern. Captum's
own visualiser always normalises each map on its own, which hides exactly that comparison.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from PIL import Image

# ColorBrewer RdBu (5 classes), reversed so that positive is red: a map that prints and is
# readable by most colour-blind viewers.
_ANCHORS = np.array([[5, 113, 176], [146, 197, 222], [247, 247, 247], [244, 165, 130], [202, 0, 32]], dtype=np.float32)
_POSITIONS = np.linspace(-1.0, 1.0, len(_ANCHORS))
OUTLIER_PERCENTILE = 99.5  # one hot pixel should not wash out the rest of the map
PHOTO_SHOW = 0.35  # how much of a colour photo shows through an attribution drawn over it


def as_map(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """An attribution (1, C, H, W), (C, H, W) or (H, W) as one (H, W) float map, summed over channels."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    array = array.astype(np.float32)
    if array.ndim == 4:  # a batch: its first input
        array = array[0]
    return array.sum(axis=0) if array.ndim == 3 else array


def symmetric_scale(*maps: np.ndarray | torch.Tensor, percentile: float = OUTLIER_PERCENTILE) -> float:
    """One half-width for the colour scale covering all ``maps`` (a high percentile of |value|)."""
    values = np.concatenate([np.abs(as_map(m)).ravel() for m in maps])
    scale = float(np.percentile(values, percentile)) if values.size else 0.0
    return scale if scale > 0 else float(values.max(initial=0.0)) or 1.0


def scales(*models: Mapping[str, np.ndarray | torch.Tensor], shared: bool = False) -> dict[str, float]:
    """A colour scale per name (a method, or a layer) covering that name's maps in every model given,
    so two models compare on one scale; with ``shared``, one scale for every name as well."""
    names = list(models[0])
    if shared:
        return dict.fromkeys(names, symmetric_scale(*(m[name] for m in models for name in names)))
    return {name: symmetric_scale(*(m[name] for m in models)) for name in names}


def diverging_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """(H, W) values → (H, W, 3) uint8 colours, −scale → blue, 0 → white, +scale → red (clipped)."""
    t = np.clip(np.asarray(values, dtype=np.float32) / (scale or 1.0), -1.0, 1.0)
    channels = [np.interp(t, _POSITIONS, _ANCHORS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so each input pixel stays a visible square."""
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def overlay(
    image: np.ndarray, attribution: np.ndarray | torch.Tensor, scale: float, zoom: int = 8, ink_shade: float = 0.3
) -> np.ndarray:
    """The attribution's colours over the input. A grey digit's ink darkens the colour, so the strokes stay
    visible; a colour photo shows through the colours (a third of each pixel), so its objects stay visible."""
    colours = diverging_rgb(as_map(attribution), scale).astype(np.float32)
    pixels = _unit(image)
    if pixels.ndim == 3 and pixels.shape[0] == 3:
        shaded = colours * (1.0 - PHOTO_SHOW) + pixels.transpose(1, 2, 0) * 255.0 * PHOTO_SHOW
    else:
        shaded = colours * (1.0 - ink_shade * np.clip(as_map(pixels), 0.0, 1.0)[..., None])
    return upscale(shaded.round().astype(np.uint8), zoom)


def grey_rgb(image: np.ndarray, zoom: int = 8) -> np.ndarray:
    """An image as an enlarged picture, as the model sees it: (H, W) or (1, H, W) grey (bright ink on black)
    or (3, H, W) colour; floats in [0, 1] or uint8 pixels."""
    pixels = np.clip(_unit(image), 0.0, 1.0)
    if pixels.ndim == 3 and pixels.shape[0] == 3:
        rgb = pixels.transpose(1, 2, 0)
    else:
        rgb = np.repeat(np.clip(as_map(pixels), 0.0, 1.0)[..., None], 3, axis=-1)
    return upscale((rgb * 255).round().astype(np.uint8), zoom)


def _unit(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Pixels as float32 in [0, 1] (uint8 pixels divided by 255), batch dimension dropped."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    scaled = array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0)
    return scaled[0] if scaled.ndim == 4 else scaled


def mosaic(
    maps: np.ndarray, scale: float | None = None, columns: int | None = None, zoom: int = 4, gap: int = 1
) -> np.ndarray:
    """(C, H, W) maps as one picture of C tiles on one symmetric scale, separated by grey gaps."""
    maps = np.asarray(maps, dtype=np.float32)
    count, height, width = maps.shape
    columns = columns or min(count, 8)
    rows = -(-count // columns)
    scale = scale if scale is not None else float(np.abs(maps).max()) or 1.0
    tile_h, tile_w = height * zoom, width * zoom
    # Every tile coloured in one call, then laid out by reshaping (no loop over 120 tiles): a grey
    # padding row and column per tile become the gaps, and the last gap is cut off.
    tiles = np.full((rows * columns, tile_h + gap, tile_w + gap, 3), 200, dtype=np.uint8)
    tiles[:count, :tile_h, :tile_w] = upscale(diverging_rgb(maps, scale).transpose(1, 2, 0, 3), zoom).transpose(
        2, 0, 1, 3
    )
    grid = tiles.reshape(rows, columns, tile_h + gap, tile_w + gap, 3).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * (tile_h + gap), columns * (tile_w + gap), 3)[: -gap or None, : -gap or None]


def colour_bar(width: int = 240, height: int = 12) -> np.ndarray:
    """The diverging colour map as a (height, width, 3) strip, −scale on the left to +scale on the right:
    the legend a page puts beside pictures drawn by ``diverging_rgb``."""
    return np.repeat(diverging_rgb(np.linspace(-1.0, 1.0, width)[None], 1.0), height, axis=0)


def thumbnail(picture: np.ndarray, side: int = 112, fill: int = 96) -> np.ndarray:
    """Any picture (an (H, W) float image in [0, 1] or (H, W, 3) uint8) scaled so its longer side is
    ``side`` and centred on a grey square: small crops stay sharp squares, a 5000-px upload is shrunk."""
    rgb = picture if picture.ndim == 3 else grey_rgb(picture, 1)
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX
    small = np.asarray(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).resize(size, resample))
    canvas = np.full((side, side, 3), fill, dtype=np.uint8)
    top, left = (side - size[1]) // 2, (side - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = small[..., :3]
    return canvas
