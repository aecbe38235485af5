"""Small image-folder datasets drawn with Pillow, for the tests of users' own data (no RGB set can be downloaded).

Each class is a colour and a shape on a noisy background at a random place and size, so a network has to look
at colour or shape (not at one fixed pixel) to tell them apart, and a short run can still learn it.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = {  # name -> (fill colour, shape)
    "red-disc": ((215, 40, 40), "ellipse"),
    "green-square": ((40, 190, 60), "rectangle"),
    "blue-disc": ((40, 60, 215), "ellipse"),
    "yellow-bar": ((230, 200, 30), "bar"),
}


def draw_image(colour, shape: str, rng: np.random.Generator, size=(40, 40), grey: bool = False) -> Image.Image:
    width, height = size
    noise = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise, "RGB")
    draw = ImageDraw.Draw(image)
    side = int(rng.integers(min(size) // 3, min(size) // 2 + 1))
    x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
    if shape == "ellipse":
        draw.ellipse([x, y, x + side, y + side], fill=colour)
    elif shape == "rectangle":
        draw.rectangle([x, y, x + side, y + side], fill=colour)
    else:
        draw.rectangle([x, y + side // 3, x + side, y + 2 * side // 3], fill=colour)
    return image.convert("L").convert("RGB") if grey else image


def make_image_folder(
    folder: Path,
    per_class: int = 30,
    classes: tuple[str, ...] = tuple(CLASSES),
    size=(40, 40),
    grey: bool = False,
    fmt: str = "PNG",
    seed: int = 0,
) -> Path:
    """``folder/<class>/<i>.png`` for each class; returns ``folder``."""
    rng = np.random.default_rng(seed)
    suffix = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tif"}[fmt]
    for name in classes:
        colour, shape = CLASSES[name]
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw_image(colour, shape, rng, size, grey).save(folder / name / f"{i:04d}.{suffix}", fmt)
    return folder


def zip_folder(folder: Path, prefix: str = "") -> bytes:
    """The folder's files as a zip (member names relative to it, under ``prefix``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def tree(folder: Path) -> set[str]:
    """Every path under ``folder`` (relative), to show that nothing was written where it should not be."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")} if folder.exists() else set()
