"""The image a page looks at: a test image, an upload or a drawing, picked the same way on every page.

Digit models get MNIST's own preprocessing for uploads and drawings; photo models (trained on class folders
or CIFAR: ``preprocess`` "photo:crop" or "photo:pad") get their photo resized to the input as their
training images were, and no drawing canvas. Widget keys are namespaced by the page (``filters.input``,
``explain.upload``, ...), so each page keeps its
own choice.
"""

from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image

from cnn_core import heatmap
from cnn_core.data.photo import PhotoSteps, photo_steps
from cnn_core.data.preprocess import ALLOWED_FORMATS, DigitSteps, digit_steps, load_image
from cnn_core.errors import CnnLabError

# The file picker's filter, from the formats load_image reads (which checks the real format anyway).
IMAGE_TYPES = sorted(ext[1:] for ext, fmt in Image.registered_extensions().items() if fmt in ALLOWED_FORMATS)
CANVAS = {"stroke_width": 18, "stroke_color": "#ffffff", "background_color": "#000000", "width": 280, "height": 280}
INPUTS = ("Test digit", "Upload", "Draw")


@dataclass(frozen=True, eq=False)
class Digit:
    image: np.ndarray  # float in [0, 1] as the model sees it: (H, W) grey, (3, H, W) colour
    steps: DigitSteps | PhotoSteps | None  # how an upload or a drawing became ``image``; None for a test image


@dataclass(frozen=True)
class InputKind:
    """What a model takes: how outside images are prepared, and its input size and channels."""

    preprocess: str = "digit"
    size: int = 28
    channels: int = 1

    @property
    def photo(self) -> bool:
        return self.preprocess.startswith("photo:")


DIGITS = InputKind()


def pick_digit(page: str, test: tuple | None, by_class: bool = False, kind: InputKind = DIGITS) -> Digit | None:
    """Draw the input picker of ``page``; the image, or None (with a message) while there is none.

    ``test`` is the test split (images, labels, class names), or None when the model has none. A test
    image is picked by its index, or with ``by_class`` by class and its number within the class.
    """
    inputs = [m for m in INPUTS if (test is not None or m != "Test digit") and not (kind.photo and m == "Draw")]
    shown = {"Test digit": "Test image", "Upload": "Upload a photo"} if kind.photo else {}
    mode = st.radio("Input", inputs, horizontal=True, key=f"{page}.input", format_func=lambda m: shown.get(m, m))
    if mode == "Test digit":
        return Digit(_test_digit(page, *test, by_class=by_class), None)
    if mode == "Upload":
        what = "A photo (made square and resized as the training images were)" if kind.photo else "A digit image"
        upload = st.file_uploader(what, type=IMAGE_TYPES, key=f"{page}.upload")
        data = upload.getvalue() if upload is not None else None
    else:
        # Imported on demand: the canvas is a v2 custom component that registers itself with the running app.
        from streamlit_drawable_canvas import st_canvas

        st.caption("Draw one digit, big, in the middle.")
        drawing = st_canvas(**CANVAS, return_image_data=True, key=f"{page}.canvas")
        data = drawing.image_bytes if drawing.json_data and drawing.json_data.get("objects") else None
    if data is None:
        upload_hint = "Upload a photo." if kind.photo else "Upload a digit image."
        st.info(upload_hint if mode == "Upload" else "Draw a digit to see what the model makes of it.")
        return None
    try:
        if kind.photo:
            photo = photo_steps(load_image(data, draft=kind.size), kind.size, kind.channels, kind.preprocess[6:])
            return Digit(photo.model_input if kind.channels == 3 else photo.model_input[0], photo)
        steps = digit_steps(load_image(data))
    except CnnLabError as err:
        st.error(str(err))
        return None
    return Digit(steps.centred, steps)


def _test_digit(page: str, x: np.ndarray, y: np.ndarray, classes: list[str], by_class: bool) -> np.ndarray:
    if by_class:
        c1, c2 = st.columns(2)
        name = c1.selectbox("Class", classes, key=f"{page}.class")
        of_class = np.flatnonzero(y == classes.index(name))
        nth = c2.number_input(f"Which {name} (of {len(of_class)})", 1, len(of_class), key=f"{page}.nth")
        return image_at(x, int(of_class[nth - 1]))
    index = st.number_input("Test image #", 0, len(x) - 1, key=f"{page}.index")
    st.caption(f"Label: **{classes[int(y[index])]}**")
    return image_at(x, int(index))


def image_at(x: np.ndarray, index: int) -> np.ndarray:
    """Test image ``index`` of uint8 (N, C, H, W) images as the model sees it: (H, W) grey or (3, H, W) colour."""
    image = x[index].astype(np.float32) / 255.0
    return image[0] if image.shape[0] == 1 else image


def open_test_digit(page: str, index: int) -> None:
    """A button callback: switch ``page``'s picker to test digit ``index`` (picked by index)."""
    st.session_state[f"{page}.input"], st.session_state[f"{page}.index"] = "Test digit", index
    st.session_state[f"{page}.opened"] = index


def opened_test_digit(page: str) -> int | None:
    """The test digit ``page``'s picker shows if it was opened with ``open_test_digit`` (None once the user
    has picked another digit or another input since)."""
    state = st.session_state
    opened = state.get(f"{page}.opened")
    if opened is None or state.get(f"{page}.input") != "Test digit" or state.get(f"{page}.index") != opened:
        return None
    return opened


def show_steps(steps: DigitSteps | PhotoSteps, plain: np.ndarray | None, classes: list[str]) -> None:
    """How an upload or a drawing became the model's input, step by step; ``plain`` is the model's
    probabilities for the digit squashed to 28×28 without MNIST's recipe (why the recipe matters)."""
    if isinstance(steps, PhotoSteps):
        _show_photo_steps(steps)
        return
    st.markdown(
        "**What the model sees**: MNIST's own recipe — ink bright on black, cropped, scaled into 20×20, centred."
    )
    pictures = [np.asarray(steps.original), steps.grey, steps.cropped, steps.boxed, steps.centred, steps.plain]
    grey = "grey, inverted" if steps.inverted else "grey"
    plain_text = f"plain resize → {classes[int(plain.argmax())]} ({plain.max():.0%})"
    names = ["original", grey, "cropped", "20×20", "centred 28×28", plain_text]
    for col, picture, name in zip(st.columns(6), pictures, names, strict=True):
        col.image(heatmap.thumbnail(picture), caption=name, width="stretch", output_format="PNG")


def _show_photo_steps(steps: PhotoSteps) -> None:
    how = "its centre cut out" if steps.fit == "crop" else "padded with its edge colour"
    st.markdown(f"**What the model sees**: the photo made square ({how}), then resized, as its training images were.")
    size = steps.resized.shape[0]
    pictures = [
        np.asarray(steps.original),
        np.asarray(steps.square),
        steps.resized,
        heatmap.grey_rgb(steps.model_input, 1),
    ]
    names = [
        "original",
        f"square ({steps.fit})",
        f"{size}×{size}",
        "model input" + (" (grey)" if steps.channels == 1 else ""),
    ]
    for col, picture, name in zip(st.columns(4), pictures, names, strict=True):
        col.image(heatmap.thumbnail(picture), caption=name, width="stretch", output_format="PNG")
