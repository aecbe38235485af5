"""Turn an untrusted image into an MNIST-like 28×28 digit, the way MNIST itself was made.

Two halves. ``load_image`` decodes bytes from a stranger safely: size caps before any pixel is
decoded, an allow-list of formats, first frame only, EXIF orientation, transparency flattened onto
a sensible background. ``digit_steps`` then repeats MNIST's recipe (ink bright on dark, cropped to
the ink, scaled into a 20×20 box with anti-aliasing, centred by centre of mass in 28×28) and keeps
every stage so a page can show what the model sees. Only Pillow and NumPy: no torch here.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, cast

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnn_core.errors import BadImage

MAX_UPLOAD_BYTES: int = 10 * 1024 * 1024  # refuse bigger inputs before decoding
MAX_IMAGE_PIXELS: int = 25_000_000  # refuse bigger width*height before Image.load()
MAX_FRAMES: int = 1000  # only frame 0 is decoded; a bigger declared frame count is refused
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")

# Fewer pixels than this across cannot hold a digit's strokes (MNIST's box alone is 20).
MIN_SIDE = 8
# Ink must stand 10% of full scale above the background, or there is no digit.
BLANK_CONTRAST = 0.1
# Below 15% of the strongest ink is paper noise: zeroed, so it is outside the bounding box.
INK_THRESHOLD = 0.15
# Grain of paper or sensor: anything within 5 standard deviations of the border is background.
NOISE_SIGMAS = 5.0
# MNIST: the longer side is scaled to 20 px keeping the aspect ratio, then the digit is pasted
# into 28×28 with its centre of mass on row/column index 14.
BOX = 20
CANVAS = 28
CENTRE = 14.0

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO

_NOT_AN_IMAGE = f"not an image CNN Lab can read ({', '.join(ALLOWED_FORMATS)})"
_STRETCHED_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_DECLARED_FRAMES = ("PNG", "WEBP", "MPO")  # formats whose header states the frame count


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == has no single truth value
class DigitSteps:
    """Every stage from the loaded image to the model input, so a page can show each one."""

    original: Image.Image  # as loaded (RGB)
    grey: np.ndarray  # float32 H×W in [0, 1], ink bright on dark (already inverted if needed)
    inverted: bool  # True if the source was dark ink on a light background
    cropped: np.ndarray  # float32, background removed, cropped to the ink's bounding box
    boxed: np.ndarray  # float32, scaled so the longer side is 20 px (each side ≤ 20), max 1
    centred: np.ndarray  # float32 28×28 in [0, 1]: the model input
    plain: np.ndarray  # float32 28×28 in [0, 1]: grey squashed to 28×28 (why centring matters)


def _bad(message: str) -> BadImage:
    """A BadImage whose message is one line, whatever a path or Pillow put in it."""
    return BadImage(" ".join(message.splitlines()))


def _too_big(size: int | None) -> BadImage:
    """size None: a file object, of which only the first MAX_UPLOAD_BYTES + 1 were read."""
    limit = f"{MAX_UPLOAD_BYTES / 2**20:g} MB"
    found = f"{size / 2**20:.1f} MB" if size is not None else f"more than {limit}"
    return _bad(f"file too large: {found} (limit {limit})")


def _read_path(path: str) -> bytes:
    """Read a file given by path, refusing missing, odd or oversized files before reading them."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise _bad(f"no such file: {path}") from None
    except OSError as exc:
        raise _bad(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _bad(f"not a file: {path}")
    if info.st_size > MAX_UPLOAD_BYTES:
        raise _too_big(info.st_size)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_UPLOAD_BYTES + 1)  # +1: the file may have grown since stat
    except OSError as exc:
        raise _bad(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_UPLOAD_BYTES:
        raise _too_big(None)
    return data


def _read_source(source: Source) -> bytes:
    """Bytes of a path, bytes-like or binary file-like; never reads more than the cap + 1 byte."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        size = memoryview(source).nbytes
        if size > MAX_UPLOAD_BYTES:
            raise _too_big(size)
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        data = _read_path(os.fspath(source))
    elif hasattr(source, "read"):
        try:
            data = source.read(MAX_UPLOAD_BYTES + 1)  # read from the current position, like Pillow
        except OSError as exc:
            raise _bad(f"cannot read the upload: {exc}") from None
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("load_image needs a binary file object (open it with 'rb')")
        if len(data) > MAX_UPLOAD_BYTES:
            raise _too_big(None)
    else:
        kind = type(source).__name__
        raise TypeError(f"load_image takes a path, bytes or a binary file, not {kind}")
    if not data:
        raise _bad("empty file")
    return bytes(data)


def _too_large(count: str) -> BadImage:
    return _bad(f"image too large: {count} pixels (limit {MAX_IMAGE_PIXELS:,})")


@contextmanager
def _decoding(failure: str) -> Iterator[None]:
    """Run Pillow on untrusted data: every failure becomes a one-line BadImage, not a traceback."""
    try:
        with warnings.catch_warnings():
            # Pillow's other warnings ("Corrupt EXIF data", ...) describe quirks it decodes
            # through; ignoring them keeps the outcome the same under `-W error`.
            warnings.simplefilter("ignore")
            # Between 1× and 2× Image.MAX_IMAGE_PIXELS Pillow only warns, then decodes anyway.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise _bad(_NOT_AN_IMAGE) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow refuses before telling us W×H
        if found:
            raise _too_large(f"{int(found.group(1)):,}") from None
        raise _bad(f"image too large (limit {MAX_IMAGE_PIXELS:,} pixels)") from None
    except MemoryError:
        raise _bad("image too large to decode in memory") from None
    except Exception as exc:  # noqa: BLE001 - a decoder failing on a stranger's file: its fault
        raise _bad(f"{failure} ({str(exc) or type(exc).__name__})") from None


def _check_header(im: Image.Image) -> None:
    """Refuse what the header declares before load() allocates anything from it."""
    width, height = im.size
    if width <= 0 or height <= 0:
        raise _bad(f"image has no pixels: {width}×{height}")
    if width * height > MAX_IMAGE_PIXELS:  # holds even if Image.MAX_IMAGE_PIXELS is None
        raise _too_large(f"{width}×{height}")
    # GIF and TIFF count frames only by walking the whole file, the very cost to avoid; since we
    # decode frame 0 alone, only formats that declare their count up front are checked.
    if im.format in _DECLARED_FRAMES and (frames := getattr(im, "n_frames", 1)) > MAX_FRAMES:
        raise _bad(f"too many frames: {frames} (limit {MAX_FRAMES})")


def _upright(im: Image.Image) -> Image.Image:
    """Apply EXIF orientation (phones store photos sideways); bad EXIF leaves the image as is."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data" is expected from strangers' files
            return ImageOps.exif_transpose(im) or im
    except Exception:  # noqa: BLE001 - malformed EXIF is common; an unrotated digit beats a refusal
        return im


def _stretch(im: Image.Image) -> Image.Image:
    """16-bit, int and float images → 8-bit by their actual range (convert("L") clips instead)."""
    values = np.asarray(im, dtype=np.float32)
    finite = np.isfinite(values)  # a float TIFF may hold NaN or inf
    lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 0.0)
    scaled = np.zeros(values.shape, dtype=np.float32)
    if hi > lo:  # a flat image stays black and is reported blank later
        np.divide(values - lo, hi - lo, out=scaled, where=finite)
    return Image.fromarray(np.round(scaled * 255).astype(np.uint8)).convert("RGB")


def _composite(rgba: Image.Image) -> Image.Image:
    """Flatten transparency onto white or black, whichever keeps the digit visible.

    Transparent pixels usually hold RGB (0, 0, 0): dropping alpha would turn a dark digit on a
    transparent canvas into black on black. If opaque pixels cover most of the image they are a
    canvas: match its colour. If they are a minority they are the ink: use the opposite colour.
    """
    opaque = rgba.getchannel("A").point([0] * 128 + [255] * 128)  # alpha ≥ 128 counts as opaque
    histogram = rgba.convert("L").histogram(mask=opaque)
    count = sum(histogram)
    light = count > 0 and sum(i * n for i, n in enumerate(histogram)) / count >= 128
    is_canvas = count >= rgba.width * rgba.height / 2
    white = light if is_canvas else not light
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if white else (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _flatten(im: Image.Image) -> Image.Image:
    """Any mode Pillow decodes → RGB: transparency composited, high bit depths stretched."""
    if im.mode == "RGB":
        return im
    with _decoding(f"cannot convert colour mode {im.mode}"):
        if im.mode in _STRETCHED_MODES:
            return _stretch(im)
        if im.mode in _ALPHA_MODES or "transparency" in im.info:
            return _composite(im.convert("RGBA"))
        return im.convert("RGB")  # 1, L, P, CMYK (Pillow undoes Adobe's inversion), YCbCr, ...


def load_image(source: Source, draft: int | None = None) -> Image.Image:
    """Decode an untrusted image safely; returns its first frame as an RGB image with alpha
    composited onto the background, EXIF orientation applied. Raises BadImage (one clear line)
    for anything wrong. A file object is read from its current position. With ``draft``, a JPEG is
    decoded at the smallest power-of-two reduction still at least ``draft`` pixels on each side
    (a 12-megapixel photo meant for a 64×64 input decodes 8× faster).
    """
    data = _read_source(source)
    with _decoding("truncated or corrupt image"):
        im = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
        _check_header(im)
        im.seek(0)  # animated GIF/APNG/WebP: the first frame is the picture
        if draft is not None and im.format == "JPEG":
            im.draft("RGB", (draft, draft))
        im.load()  # never set ImageFile.LOAD_TRUNCATED_IMAGES: a cut-off file must fail here
    return _flatten(_upright(im))


def _ink(grey: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1]: the background level removed, paper noise zeroed, max 1.

    The border gives the background's level (median) and grain (median absolute deviation,
    robust even where the digit touches the edge); grain left in would stretch the bounding box.
    """
    border = _border(grey)
    background = float(np.median(border))
    grain = 1.4826 * float(np.median(np.abs(border - background)))  # MAD → σ for Gaussian noise
    ink = grey - background
    np.clip(ink, 0.0, None, out=ink)  # in place: a 25-megapixel image is 100 MB per float copy
    strongest = float(ink.max())
    if strongest < max(BLANK_CONTRAST, NOISE_SIGMAS * grain):
        raise _bad("no digit found: the image is blank")
    ink /= strongest
    ink[ink < max(INK_THRESHOLD, NOISE_SIGMAS * grain / strongest)] = 0.0
    return ink


def _border(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def _resize(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased resize of a float array to (width, height), as MNIST's box was anti-aliased."""
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))  # mode "F"
    resized = np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    return np.clip(resized, 0.0, 1.0)  # Lanczos overshoots a little around edges


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()


def _fit_box(cropped: np.ndarray) -> np.ndarray:
    """Scale so the longer side is 20 px, keeping the aspect ratio (a '1' stays thin)."""
    height, width = cropped.shape
    scale = BOX / max(height, width)
    boxed = _resize(cropped, (max(1, round(width * scale)), max(1, round(height * scale))))
    if boxed.max() <= 0:
        raise _bad("no digit found: the image is blank")
    return cast(np.ndarray, boxed / boxed.max())


def _centre_by_mass(boxed: np.ndarray) -> np.ndarray:
    """Paste into 28×28 with the centre of mass on the middle: that is how MNIST was made.

    Centring the bounding box instead would put a '7' visibly off-centre compared with the
    training data. The shift is clipped so the whole digit stays on the canvas.
    """
    height, width = boxed.shape
    total = float(boxed.sum())
    row = float(boxed.sum(axis=1) @ np.arange(height)) / total
    col = float(boxed.sum(axis=0) @ np.arange(width)) / total
    top = int(np.clip(round(CENTRE - row), 0, CANVAS - height))
    left = int(np.clip(round(CENTRE - col), 0, CANVAS - width))
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    canvas[top : top + height, left : left + width] = boxed
    return canvas


def digit_steps(image: Image.Image) -> DigitSteps:
    """Turn a loaded image into MNIST's form, keeping every stage for display.

    Polarity comes from the border (the median of the outermost rows and columns): a light
    border means dark ink on paper, so it is inverted, because MNIST digits are bright on black.
    """
    original = _flatten(image)
    width, height = original.size
    if min(width, height) < MIN_SIDE:
        need = f"need at least {MIN_SIDE} on each side"
        raise _bad(f"image too small: {width}×{height} pixels ({need})")
    # Pillow's "L" is ITU-R 601 luminance (0.299 R + 0.587 G + 0.114 B), one byte per pixel.
    grey = np.asarray(original.convert("L"), dtype=np.float32) / 255.0
    inverted = bool(np.median(_border(grey)) > 0.5)
    if inverted:
        np.subtract(1.0, grey, out=grey)
    cropped = _crop_to_ink(_ink(grey))
    boxed = _fit_box(cropped)
    return DigitSteps(
        original=original,
        grey=grey,
        inverted=inverted,
        cropped=cropped,
        boxed=boxed,
        centred=_centre_by_mass(boxed),
        plain=_resize(grey, (CANVAS, CANVAS)),
    )


def to_mnist(source: Source) -> np.ndarray:
    """Load an untrusted image and return the model input: float32 (28, 28) in [0, 1]."""
    return digit_steps(load_image(source)).centred
