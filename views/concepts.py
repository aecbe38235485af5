"""Concepts: a convolution and pooling playground for the article's filter, stride, padding and pooling."""

import numpy as np
import pandas as pd
import streamlit as st

from cnn_core import playground as pg
from cnn_core.charts import values_chart
from cnn_core.data import load_dataset
from cnn_core.errors import BadImage, InvalidConfig
from cnn_core.heatmap import upscale
from ui.digit_input import IMAGE_TYPES

DISPLAY = 280  # pixels: pictures are enlarged by whole pixels (sharp squares) to about this size


@st.cache_resource  # read-only tensors, shared by every session
def mnist():
    return load_dataset("mnist", download=False)  # offline: the bundled sample


@st.cache_data(max_entries=8)
def decoded(data: bytes) -> np.ndarray:
    return pg.upload_image(data)


def picture(rgb: np.ndarray, pixel: tuple[int, int] | None = None) -> np.ndarray:
    """Enlarged by whole pixels; `pixel` (row, column) is outlined in yellow."""
    scale = max(1, DISPLAY // max(rgb.shape[:2]))
    big = upscale(rgb, scale)
    return big if pixel is None else pg.outline(big, *pixel, 1, scale)


def plural(n: int, word: str) -> str:
    return f"the last {n} {word}{'s' if n != 1 else ''}"


def pick_input() -> tuple[np.ndarray, str]:
    source = st.radio("Input", ["dataset digit", "upload", "pattern"], horizontal=True, key="concepts.source")
    digits = mnist()
    if source == "pattern":
        name = st.selectbox("Pattern", pg.PATTERNS, key="concepts.pattern")
        size = st.slider("Pattern size (pixels)", 8, 48, 28, key="concepts.pattern_size")
        return pg.pattern(name, size), f"a {size}×{size} {name}"
    if source == "upload":
        file = st.file_uploader(
            "Image (colour is kept; big images are shrunk to 64 pixels)", type=IMAGE_TYPES, key="concepts.upload"
        )
        if file is not None:
            try:
                image = decoded(file.getvalue())
            except BadImage as err:
                st.error(f"This upload cannot be used: {err}")  # not its name: a stranger's text, unescaped
            else:
                return image, "your image" + (" in colour (R, G, B)" if len(image) == 3 else " (grey)")
        st.caption("Until an image is loaded, the first dataset digit is used.")
    index = (
        st.number_input("Digit number (held-out test set)", 0, len(digits.test_x) - 1, 0, key="concepts.digit")
        if source == "dataset digit"
        else 0
    )
    image, label = pg.dataset_digit(digits, int(index))
    return image, f"a {label} from {digits.source.split(';')[0]}"


def pick_filter() -> tuple[pg.Kernels, str]:
    names = [*pg.PRESETS, "sepia", "custom"]
    name = st.selectbox("Filter", names, index=names.index("Sobel x"), key="concepts.kernel")
    if name != "custom":
        return name, name
    size = st.radio("Custom filter size", [3, 5], horizontal=True, key="concepts.custom_size")
    start = pd.DataFrame(np.pad([[1.0]], size // 2), columns=[str(j) for j in range(size)])  # identity
    edited = st.data_editor(start, hide_index=True, key=f"concepts.custom{size}")
    return pg.kernel_from_cells(edited.to_numpy(dtype=object).tolist()), f"your {size}×{size} filter"


st.title("🧮 Concepts: convolution and pooling")
st.markdown(
    "A filter is a small window slid over the image; at each place it multiplies the pixels under it by "
    "its weights and adds them up. Pick an input and a filter, set **stride** and **padding**, and watch "
    "the article's formula **output = (W − F + 2P) / S + 1** at work. Every number here is PyTorch's."
)

left, right = st.columns(2)
with left:
    image, described = pick_input()
with right:
    try:
        kernels, kernel_name = pick_filter()
    except InvalidConfig as err:
        st.error(str(err))
        st.stop()
    stride = st.slider("Stride (S)", 1, 6, 1, key="concepts.stride")
    mode = st.radio("Padding (P)", ["number", "same", "valid"], horizontal=True, key="concepts.padding_mode")
    padding = int(st.number_input("Zeros on each side", 0, 6, 0, key="concepts.padding")) if mode == "number" else mode

try:
    result = pg.convolve(image, kernels, stride, padding)
except InvalidConfig as err:
    st.error(str(err))
    st.stop()
rows, cols = result.rows, result.cols
k = result.weights.shape[-1]

st.subheader("What the filter produces")
shown_in, shown_out, facts = st.columns([1, 1, 1.2])
with facts:
    st.markdown(
        f"Input: {described}, **{rows.size} × {cols.size}**, filter **{k} × {k}**, stride {stride}, "
        f"padding {padding!r} → {rows.padded} × {cols.padded} after padding."
    )
    st.markdown(f"**Output size: {rows.output} × {cols.output}**")
    st.markdown(f"Rows: `{rows.formula}`" + ("" if rows.formula == cols.formula else f"  \nColumns: `{cols.formula}`"))
    if rows.fits and cols.fits:
        st.success(f"Stride {stride} fits: (W − F + 2P) / S is a whole number, every pixel is reached.")
    else:
        lost = [plural(n, w) for n, w in ((rows.dropped, "row"), (cols.dropped, "column")) if n]
        st.warning(
            f"Stride {stride} does not fit: PyTorch drops {' and '.join(lost)} of the padded input "
            "(shaded orange); no window ever reaches them."
        )
    st.caption(
        "Blue: zero padding. Yellow: the window and the output value stepped through below. Output in "
        "red/blue: positive/negative values."
    )

st.subheader("Step through one output position")
channel = 0
if result.output.shape[0] > 1:  # sepia: three filters, one per output colour
    channel = ["R", "G", "B"].index(
        st.radio("Output channel", ["R", "G", "B"], horizontal=True, key="concepts.channel")
    )
position = []
strongest = np.unravel_index(int(np.abs(result.output[channel]).argmax()), result.output.shape[1:])
for slot, axis, size, start in zip(
    st.columns(2), ("row", "column"), (rows.output, cols.output), strongest, strict=False
):
    key = f"concepts.{axis}"  # opens on the strongest response, not a blank corner
    st.session_state[key] = min(st.session_state.get(key, int(start)), size - 1)  # the output may have shrunk
    position.append(slot.slider(f"Output {axis}", 0, size - 1, key=key) if size > 1 else 0)
row, col = position
window = pg.window_at(image, kernels, stride, padding, row, col, channel)
value = float(result.output[channel, row, col])
titles = ("Input under the window", "Filter weights", "Products (element-wise)")
for slot, values, title in zip(st.columns(3), (window.pixels, window.weights, window.products), titles, strict=True):
    slot.altair_chart(values_chart(values, title), width="stretch")
st.markdown(
    f"Sum of the {window.products.size} products = **{window.total:.4f}**; "
    f"PyTorch's output at ({row}, {col}) = **{value:.4f}**."
)

overlay = pg.input_overlay(image, result, max(1, DISPLAY // max(rows.padded, cols.padded)), window)
shown_in.image(overlay, caption="Padded input", width="stretch")
output_rgb = pg.to_rgb(result.output if result.output.shape[0] == 3 else result.output[:1])
shown_out.image(picture(output_rgb, (row, col)), caption=f"Output ({kernel_name})", width="stretch")

st.subheader("Pooling the output: max vs average")
sizes = st.columns(2)
pool_size = sizes[0].slider("Pool window", 1, 4, 2, key="concepts.pool_size")
pool_stride = sizes[1].slider("Pool stride", 1, 4, 2, key="concepts.pool_stride")
try:
    pooled = {kind: pg.pool(result.output, pool_size, pool_stride, kind) for kind in ("max", "avg")}
except InvalidConfig as err:
    st.error(str(err))
else:
    gap = (pooled["max"].output - pooled["avg"].output).sum(axis=0)
    r, c = np.unravel_index(int(np.argmax(gap)), gap.shape)  # where the two disagree most
    values = pg.pool_window(result.output, pool_size, pool_stride, int(r), int(c))
    views = st.columns(3)
    for view, (kind, res) in zip(views, pooled.items(), strict=False):
        maps = res.output if res.output.shape[0] == 3 else res.output[:1]
        view.image(
            picture(pg.to_rgb(maps)),
            width="stretch",
            caption=f"{'Max' if kind == 'max' else 'Average'} pooling: {res.rows.output} × {res.cols.output}",
        )
    first = " (R)" if values.shape[0] == 3 else ""
    views[2].altair_chart(values_chart(values[:1], f"Pooled window ({r}, {c}){first}"), width="stretch")
    views[2].markdown(
        f"max = **{pooled['max'].output[0, r, c]:.4f}**, average = **{pooled['avg'].output[0, r, c]:.4f}**  \n"
        f"`{pooled['max'].rows.formula}`"
    )

st.subheader("Depth: several filters at once")
chosen = st.multiselect(
    "Filters of one layer", list(pg.PRESETS), ["Sobel x", "Sobel y", "Laplacian edge"], key="concepts.depth"
)
if not chosen:
    st.info("Choose at least one filter.")
else:
    try:
        stack = pg.convolve(image, [pg.PRESETS[n] for n in chosen], stride, padding)
    except InvalidConfig as err:
        st.error(str(err))
    else:
        depth, height, width = stack.output.shape
        st.markdown(
            f"**depth = {depth}**: {depth} filters → output {depth} × {height} × {width}. A layer's filters "
            f"share one size, so smaller ones sit in a {stack.weights.shape[-1]}×{stack.weights.shape[-1]} "
            "frame of zeros."
        )
        for view, name, fmap in zip(st.columns(depth), chosen, stack.output, strict=False):
            view.image(picture(pg.to_rgb(fmap[None])), caption=name, width="stretch")
