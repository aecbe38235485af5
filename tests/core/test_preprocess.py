"""Tests for cnn_core.data.preprocess: safe decoding of untrusted images and MNIST-style centring.

Every image is drawn here with Pillow (no binary fixtures), so each test shows what it feeds in.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile, ImageOps

from cnn_core.data import preprocess
from cnn_core.data.preprocess import DigitSteps, digit_steps, load_image, to_mnist
from cnn_core.errors import BadImage

# --- helpers -----------------------------------------------------------------------------------


def draw_seven(size=(120, 120), box=(30, 20, 90, 100), ink=0, paper=255, mode="L", width=10):
    """A thick '7' (asymmetric, so bounding-box centring and mass centring differ)."""
    im = Image.new(mode, size, paper)
    left, top, right, bottom = box
    draw = ImageDraw.Draw(im)
    draw.line((left, top, right, top), fill=ink, width=width)
    draw.line((right, top, left + (right - left) // 3, bottom), fill=ink, width=width)
    return im


def draw_one(size=(120, 120), ink=0, paper=255):
    im = Image.new("L", size, paper)
    ImageDraw.Draw(im).line((60, 15, 60, 105), fill=ink, width=10)
    return im


def encode(im: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **options)
    return buffer.getvalue()


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(a.shape)
    return float((a * rows).sum() / a.sum()), float((a * cols).sum() / a.sum())


def ink_box(a: np.ndarray, level: float = 0.0) -> tuple[int, int]:
    rows = np.flatnonzero((a > level).any(axis=1))
    cols = np.flatnonzero((a > level).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def refused(source) -> str:
    """The BadImage message for source; every one must be a single line, in the user's words (an image, not
    the library that decodes it)."""
    with pytest.raises(BadImage) as caught:
        to_mnist(source)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message and message
    assert "Pillow" not in message and "PIL" not in message
    return message


def png_header(width: int, height: int) -> bytes:
    """A tiny hand-made PNG whose header claims width×height (no real pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    empty = zlib.compress(b"")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", empty) + chunk(b"IEND", b"")


def bmp_header(width: int, height: int) -> bytes:
    """A hand-made 24-bit BMP header claiming width×height, with no pixel data after it."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + width * height * 3 % 2**32, 0, 0, 54) + info


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return to_mnist(encode(draw_seven()))


# --- the MNIST recipe --------------------------------------------------------------------------


def test_black_digit_on_white_becomes_bright_centred_28x28(reference):
    out = reference
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)
    assert out[0].max() == 0 and out[:, 0].max() == 0, "background must be dark, ink bright"
    row, col = centre_of_mass(out)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1
    height, width = ink_box(out)
    assert max(height, width) == 20 and height <= 20 and width <= 20


def test_white_digit_on_black_matches_black_digit_on_white(reference):
    steps = digit_steps(load_image(encode(draw_seven(ink=255, paper=0))))
    assert not steps.inverted
    assert digit_steps(load_image(encode(draw_seven()))).inverted
    assert np.abs(steps.centred - reference).max() < 0.02


def test_digit_in_corner_of_large_canvas_ends_centred(reference):
    im = Image.new("L", (900, 700), 255)
    im.paste(draw_seven(), (770, 570))  # bottom-right corner
    out = to_mnist(encode(im))
    row, col = centre_of_mass(out)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1
    assert np.abs(out - reference).mean() < 0.02


def test_thin_digit_keeps_its_aspect_ratio_in_the_20px_box():
    steps = digit_steps(draw_one())
    height, width = steps.boxed.shape
    assert height == 20 and width <= 4
    assert np.abs(np.array(centre_of_mass(steps.centred)) - 14).max() <= 1


def test_model_input_fed_back_in_comes_out_the_same(reference):
    again = to_mnist(encode(Image.fromarray(np.round(reference * 255).astype(np.uint8))))
    assert np.abs(again - reference).mean() < 0.02


def test_faint_pencil_digit_on_noisy_grey_paper_is_found_and_normalised(reference):
    rng = np.random.default_rng(0)
    paper = 200 + rng.integers(-10, 11, size=(120, 120))
    pencil = np.where(np.asarray(draw_seven()) < 128, 120, paper).astype(np.uint8)
    steps = digit_steps(load_image(encode(Image.fromarray(pencil), "JPEG", quality=90)))
    clean = digit_steps(draw_seven())
    # Grain must not stretch the bounding box to the whole sheet.
    assert np.abs(np.subtract(steps.cropped.shape, clean.cropped.shape)).max() <= 3
    out = steps.centred
    assert out.max() == pytest.approx(1.0)
    assert np.abs(np.array(centre_of_mass(out)) - 14).max() <= 1
    assert np.abs(out - reference).mean() < 0.03


def test_steps_expose_every_stage_with_documented_shapes():
    steps = digit_steps(draw_seven(size=(150, 100), box=(40, 10, 100, 90)).convert("RGB"))
    assert isinstance(steps, DigitSteps)
    assert steps.original.mode == "RGB" and steps.original.size == (150, 100)
    assert steps.grey.shape == (100, 150) and steps.grey.dtype == np.float32
    assert steps.grey.min() >= 0.0 and steps.grey.max() <= 1.0
    assert steps.cropped.dtype == np.float32 and max(steps.cropped.shape) < 100
    assert max(steps.boxed.shape) == 20 and steps.boxed.max() == pytest.approx(1.0)
    for stage in (steps.centred, steps.plain):
        assert stage.shape == (28, 28) and stage.dtype == np.float32
        assert stage.min() >= 0.0 and stage.max() <= 1.0
    with pytest.raises(AttributeError):
        steps.inverted = False  # frozen


def test_path_bytes_and_file_object_give_the_same_digit(tmp_path, reference):
    data = encode(draw_seven())
    path = tmp_path / "seven.png"
    path.write_bytes(data)
    for source in (path, str(path), io.BytesIO(data), bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(to_mnist(source), reference)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP", "GIF", "TIFF"])
def test_every_allowed_format_gives_the_same_digit(fmt, reference):
    assert np.abs(to_mnist(encode(draw_seven().convert("RGB"), fmt)) - reference).mean() < 0.03


# --- colour modes, transparency, bit depth, orientation, frames -------------------------------


def test_dark_digit_on_transparent_canvas_is_composited_not_black(reference):
    im = Image.new("RGBA", (120, 120), (0, 0, 0, 0))  # transparent pixels hold black RGB
    im.putalpha(ImageOps.invert(draw_seven()))  # opaque black where the ink is
    assert load_image(encode(im)).getpixel((0, 0)) == (255, 255, 255)
    assert np.abs(to_mnist(encode(im)) - reference).max() < 0.02


def test_light_digit_on_transparent_canvas_gets_black_background(reference):
    im = Image.new("RGBA", (120, 120), (255, 255, 255, 0))
    im.putalpha(ImageOps.invert(draw_seven()))
    assert load_image(encode(im)).getpixel((0, 0)) == (0, 0, 0)
    assert np.abs(to_mnist(encode(im)) - reference).max() < 0.02


def test_light_card_with_transparent_corners_keeps_the_card_colour(reference):
    card = draw_seven().convert("RGBA")
    alpha = Image.new("L", card.size, 0)
    ImageDraw.Draw(alpha).rounded_rectangle((0, 0, 119, 119), radius=25, fill=255)
    card.putalpha(alpha)  # the transparent corners hold white RGB; set them to black RGB
    card = Image.composite(card, Image.new("RGBA", card.size, (0, 0, 0, 0)), alpha)
    assert load_image(encode(card)).getpixel((0, 0)) == (255, 255, 255)
    assert np.abs(to_mnist(encode(card)) - reference).max() < 0.02


def test_la_image_with_dark_digit_is_composited_onto_white(reference):
    im = Image.merge("LA", (Image.new("L", (120, 120), 0), ImageOps.invert(draw_seven())))
    assert np.abs(to_mnist(encode(im)) - reference).max() < 0.02


def test_palette_image_with_transparent_index_is_composited(reference):
    im = draw_seven(ink=1, paper=0, mode="P")
    im.putpalette([0] * 768)  # every entry black: only the transparency tells paper from ink
    data = encode(im, transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    assert np.abs(to_mnist(data) - reference).max() < 0.02


def test_16_bit_digit_in_narrow_value_range_is_stretched_not_clipped(reference):
    values = np.where(np.asarray(draw_seven()) > 127, 1000, 3000).astype(np.uint16)
    data = encode(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert np.abs(to_mnist(data) - reference).max() < 0.02


def test_float_image_with_nan_is_stretched_without_crashing(reference):
    values = np.where(np.asarray(draw_seven()) > 127, -5.0, 7.5).astype(np.float32)
    values[0, :5] = np.nan
    assert np.abs(digit_steps(Image.fromarray(values)).centred - reference).max() < 0.05


def test_cmyk_jpeg_gives_the_same_digit_as_rgb(reference):
    data = encode(draw_seven().convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert load_image(data).mode == "RGB"
    assert np.abs(to_mnist(data) - reference).mean() < 0.02


def test_one_bit_image_is_read():
    out = to_mnist(encode(draw_seven().convert("1")))
    assert centre_of_mass(out) == pytest.approx((14, 14), abs=1)


def test_exif_orientation_is_applied():
    im = Image.new("L", (60, 30), 255)
    im.paste(0, (0, 0, 10, 30))  # a dark band on the left edge
    exif = im.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    loaded = load_image(encode(im, "JPEG", exif=exif.tobytes()))
    assert loaded.size == (30, 60)
    assert loaded.getpixel((15, 3))[0] < 60  # the band is now on top
    assert loaded.getpixel((15, 55))[0] > 200


def test_malformed_exif_does_not_crash(monkeypatch, reference):
    data = encode(draw_seven(), "JPEG", quality=95, exif=b"Exif\x00\x00MM\x00*garbage\xff\xff")
    assert np.abs(to_mnist(data) - reference).mean() < 0.02

    def broken(image, **_):
        raise SyntaxError("corrupt EXIF")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    assert load_image(data).size == (120, 120)  # falls back to the untransposed image


def test_animated_gif_uses_its_first_frame(reference):
    first, second = draw_seven(mode="L"), draw_one()
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert np.abs(to_mnist(data) - reference).max() < 0.02


def test_animated_png_uses_its_first_frame(reference):
    data = encode(draw_seven(), "PNG", save_all=True, append_images=[draw_one()], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert np.abs(to_mnist(data) - reference).max() < 0.02


def test_animated_png_declaring_too_many_frames_is_refused(monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_FRAMES", 1)
    data = encode(draw_seven(), "PNG", save_all=True, append_images=[draw_one()], duration=100)
    assert refused(data) == "too many frames: 2 (limit 1)"


# --- what must be refused, with one clear line ------------------------------------------------


def test_missing_path_is_refused(tmp_path):
    assert refused(tmp_path / "nope.png") == f"no such file: {tmp_path / 'nope.png'}"


def test_directory_path_is_refused(tmp_path):
    assert refused(tmp_path).startswith("not a file:")


def test_path_with_newline_still_gives_one_line_message(tmp_path):
    assert refused(str(tmp_path / "a\nb.png")).startswith("no such file:")


@pytest.mark.parametrize("source", [b"", io.BytesIO(b"")], ids=["bytes", "file"])
def test_empty_input_is_refused(source):
    assert refused(source) == "empty file"


def test_empty_file_on_disk_is_refused(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert refused(tmp_path / "empty.png") == "empty file"


def test_truncated_png_is_refused_as_truncated_or_corrupt():
    data = encode(draw_seven())
    assert "truncated or corrupt" in refused(data[: len(data) // 2])


def test_truncated_jpeg_is_refused_as_truncated_or_corrupt():
    data = encode(draw_seven(), "JPEG")
    assert "truncated or corrupt" in refused(data[: len(data) // 2])


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("digit.png", encode(draw_seven()))  # even a real PNG inside
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        b"this is a text file, not a picture\n",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><circle r="9"/></svg>',
        pickle.dumps({"weights": [1, 2, 3]}),
        _zip_bytes(),
        encode(draw_seven(), "PPM"),  # a real image, but not an allowed format
    ],
    ids=["text", "svg", "pickle", "zip", "ppm"],
)
def test_non_images_with_png_name_are_refused(tmp_path, content):
    path = tmp_path / "digit.png"
    path.write_bytes(content)
    assert refused(path) == "not an image CNN Lab can read (PNG, JPEG, WEBP, BMP, GIF, TIFF)"


@pytest.mark.parametrize(
    "data",
    [
        png_header(100_000, 100_000),  # over 2× Pillow's limit: DecompressionBombError
        png_header(10_000, 10_000),  # between 1× and 2×: Pillow only warns
        png_header(6_000, 5_000),  # under Pillow's limit, over ours
        bmp_header(50_000, 50_000),
    ],
    ids=["png-bomb-error", "png-bomb-warning", "png-over-our-cap", "bmp"],
)
def test_header_claiming_huge_size_is_refused_before_decoding(data, recwarn, monkeypatch):
    decoded = []  # every image Pillow is asked to decode: none, since the header alone is refused
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image.size) or load(image))
    message = refused(data)
    assert message.startswith("image too large") and "25,000,000" in message
    assert decoded == []  # nothing was allocated from the header
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_own_pixel_cap_holds_when_pillow_limit_is_off(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    message = refused(png_header(6_000, 5_000))
    assert message == "image too large: 6000×5000 pixels (limit 25,000,000)"


def test_zero_width_image_is_refused():
    refused(png_header(0, 5))
    with pytest.raises(BadImage, match="too small: 0×5"):
        digit_steps(Image.new("L", (0, 5)))


def test_input_over_byte_limit_is_refused_before_decoding(tmp_path):
    too_big = preprocess.MAX_UPLOAD_BYTES + 1
    assert refused(bytes(too_big)) == "file too large: 10.0 MB (limit 10 MB)"
    assert refused(io.BytesIO(bytes(too_big))) == "file too large: more than 10 MB (limit 10 MB)"
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.truncate(too_big)  # sparse: refused from its size alone, never read
    assert refused(path).startswith("file too large")


@pytest.mark.parametrize("size", [(1, 1), (3, 40), (7, 7)])
def test_tiny_image_is_refused(size):
    assert refused(encode(Image.new("L", size, 0))).startswith("image too small")


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (50, 50), 255),
        Image.new("RGB", (50, 50), (0, 0, 0)),
        Image.new("RGBA", (50, 50), (0, 0, 0, 0)),
        Image.effect_noise((50, 50), 3),  # faint sensor noise only
        Image.effect_noise((200, 200), 30),  # strong grain, still no digit
    ],
    ids=["white", "black", "transparent", "faint-noise", "strong-noise"],
)
def test_blank_image_has_no_digit(image):
    assert refused(encode(image)) == "no digit found: the image is blank"


def test_unknown_source_type_is_a_bug_not_a_bad_image():
    with pytest.raises(TypeError):
        load_image(12345)
    with pytest.raises(TypeError):
        load_image(io.StringIO("text mode"))
