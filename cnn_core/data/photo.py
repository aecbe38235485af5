"""Bring a photo to a model's square input: centre-crop or pad, resize, grey or colour.

The same steps decode every image of a user's dataset (``cnn_core.data.folders``) and an upload on the
Explain page, so a model sees an uploaded photo exactly as it saw its training images. Digits go through
MNIST's own recipe instead (``cnn_core.data.preprocess.digit_steps``). Only Pillow and NumPy: no torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cnn_core.config import PHOTO_FITS as FITS
from cnn_core.errors import InvalidConfig

# ITU-R 601 luma, the weights Pillow's convert("L") uses: grey looks as bright as the colour it came from.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# JPEG stores colour at lower resolution, so a grey photo saved as JPEG differs between channels by a few
# levels; up to this difference a picture still counts as grey.
GREY_TOLERANCE = 8


@dataclass(frozen=True, eq=False)
class PhotoSteps:
    """Every stage from a loaded photo to the model input, so the Explain page can show each one."""

    original: Image.Image  # RGB as loaded (EXIF-rotated, transparency flattened)
    square: Image.Image  # centre-cropped or padded to a square, full resolution
    resized: np.ndarray  # uint8 size×size×3
    model_input: np.ndarray  # float32 C×size×size in [0, 1]: what the network is given
    fit: str
    channels: int


def check_fit(fit: str) -> str:
    if fit not in FITS:
        raise InvalidConfig(f"fit: expected one of {', '.join(FITS)}, got {fit!r}")
    return fit


def to_square(image: Image.Image, fit: str) -> Image.Image:
    """The image made square: its centre cut out ("crop"), or bars of its own edge colour added ("pad").

    Padding with the mean colour of the border, not black, keeps a dark letter on white paper on white."""
    check_fit(fit)
    width, height = image.size
    side = min(width, height) if fit == "crop" else max(width, height)
    if width == height:
        return image
    if fit == "crop":
        left, top = (width - side) // 2, (height - side) // 2
        return image.crop((left, top, left + side, top + side))
    pixels = np.asarray(image)
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).mean(axis=0)
    canvas = Image.new("RGB", (side, side), tuple(int(round(v)) for v in edge))
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def resize_square(image: Image.Image, size: int, fit: str) -> np.ndarray:
    """uint8 size×size×3: square first (no distortion), then one high-quality resize."""
    square = to_square(image, fit)
    if square.size != (size, size):
        # reducing_gap: Pillow first shrinks by whole factors (fast), then finishes with Lanczos (sharp)
        square = square.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(square, dtype=np.uint8)


def to_channels(rgb: np.ndarray, channels: int) -> np.ndarray:
    """(…, H, W, 3) uint8 → (…, C, H, W) uint8 with 1 (luma) or 3 channels; one image or a whole stack."""
    if channels == 3:
        return np.ascontiguousarray(np.moveaxis(rgb, -1, -3))
    return np.round(rgb.astype(np.float32) @ LUMA).clip(0, 255).astype(np.uint8)[..., None, :, :]


def is_grey(rgb: np.ndarray) -> bool:
    """Whether an H×W×3 (or N×H×W×3) uint8 picture has (almost) equal red, green and blue everywhere."""
    spread = rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1)
    return int(spread.max(initial=0)) <= GREY_TOLERANCE


def photo_steps(image: Image.Image, size: int, channels: int, fit: str = "crop") -> PhotoSteps:
    """What a photo becomes for a model with a ``size``×``size``×``channels`` input."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")  # load_image has already applied EXIF
    resized = resize_square(rgb, size, fit)
    model_input = to_channels(resized, channels).astype(np.float32) / 255.0
    return PhotoSteps(rgb, to_square(rgb, fit), resized, model_input, fit, channels)
