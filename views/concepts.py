"""Concepts: a convolution and pooling playground for the article's filter, stride, padding and pooling.

Convolutions are cached by their inputs, and the filter, the output position, the pooling and the depth
filters each rerun only their own fragment (a whole-page rerun costs the browser about twice as long)."""

import numpy as np
import pandas as pd
import streamlit as st

from cnn_core.charts import values_chart
from cnn_core.data import load_dataset
from cnn_core.errors import BadImage, InvalidConfig
from cnn_core.teaching import playground as pg
from ui.digit_input import IMAGE_TYPES

NO_OUTPUT = "No output until the filter, stride and padding work together."


@st.cache_resource  # read-only tensors, shared by every session
def mnist():
    return load_dataset("mnist", download=False)  # offline: the bundled sample


decoded = st.cache_data(max_entries=8)(pg.upload_image)  # an upload is decoded once, not on every rerun
# Keyed on what a convolution depends on (image, filter(s), stride, padding): the depth filters, a new filter
# or a return to an earlier setting reuse what was computed.
convolved = st.cache_data(max_entries=64)(pg.convolve)


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
    index = 0  # an upload still to come shows the first digit
    if source == "dataset digit":
        last = len(digits.test_x) - 1
        index = st.number_input("Digit number (held-out test set)", 0, last, 0, key="concepts.digit")
    image, label = pg.dataset_digit(digits, int(index))
    return image, f"a {label} from {digits.source.split(';')[0]}"


def pick_filter() -> tuple[pg.Kernels, str]:
    """The chosen filter and its name; InvalidConfig when a hand-typed cell is not a usable number."""
    names = [*pg.PRESETS, "sepia", "custom"]
    name = st.selectbox("Filter", names, index=names.index("Sobel x"), key="concepts.kernel")
    if name != "custom":
        return name, name
    size = st.radio("Custom filter size", [3, 5], horizontal=True, key="concepts.custom_size")
    start = pd.DataFrame(np.pad([[1.0]], size // 2), columns=[str(j) for j in range(size)])  # identity
    edited = st.data_editor(start, key=f"concepts.custom{size}")  # rows and columns labelled from 0, as errors count
    return pg.kernel_from_cells(edited.to_numpy(dtype=object).tolist()), f"your {size}×{size} filter"


def show_facts(result: pg.ConvResult, described: str, padding: int | str) -> None:
    rows, cols, stride, k = result.rows, result.cols, result.stride, result.weights.shape[-1]
    st.markdown(
        f"Input: {described}, **{rows.size} × {cols.size}**, filter **{k} × {k}**, stride {stride}, "
        f"padding {padding!r} → {rows.padded} × {cols.padded} after padding."
    )
    st.markdown(f"**Output size: {rows.output} × {cols.output}**")
    st.markdown(f"Rows: `{rows.formula}`" + ("" if rows.formula == cols.formula else f"  \nColumns: `{cols.formula}`"))
    fits, why = pg.stride_fit(result)
    (st.success if fits else st.warning)(why)
    st.caption(
        "Blue: zero padding. Yellow: the window and the output value stepped through below. Output in "
        "red/blue: positive/negative values."
    )


@st.fragment  # moving the output position (or channel) redraws this part only
def show_output(image: np.ndarray, result: pg.ConvResult, described: str, kernel_name: str, padding: int | str):
    shown_in, shown_out, facts = st.columns([1, 1, 1.2])
    with facts:
        show_facts(result, described, padding)
    st.subheader("Step through one output position")
    channel = 0
    if result.output.shape[0] > 1:  # sepia: three filters, one per output colour
        channel = "RGB".index(st.radio("Output channel", ["R", "G", "B"], horizontal=True, key="concepts.channel"))
    position, sizes, starts = [], (result.rows.output, result.cols.output), pg.strongest(result.output, channel)
    for slot, axis, size, start in zip(st.columns(2), ("row", "column"), sizes, starts, strict=True):
        key = f"concepts.{axis}"  # opens on the strongest response, not a blank corner
        st.session_state[key] = min(st.session_state.get(key, start), size - 1)  # the output may have shrunk
        position.append(slot.slider(f"Output {axis}", 0, size - 1, key=key) if size > 1 else 0)
    row, col = position
    window = pg.window_of(result, image, row, col, channel)
    parts = {"Input under the window": window.pixels, "Filter weights": window.weights}
    st.altair_chart(values_chart(parts | {"Products (element-wise)": window.products}), width="content")
    st.markdown(
        f"Sum of the {window.products.size} products = **{window.total:.4f}**; "
        f"PyTorch's output at ({row}, {col}) = **{float(result.output[channel, row, col]):.4f}**."
    )
    overlay = pg.input_overlay(image, result, max(1, pg.DISPLAY // max(result.rows.padded, result.cols.padded)), window)
    shown_in.image(overlay, caption="Padded input", width="stretch")
    output = pg.enlarge(pg.to_rgb(result.output), (row, col))  # one channel, or sepia's three colours
    shown_out.image(output, caption=f"Output ({kernel_name})", width="stretch")


@st.fragment  # a new pool window or stride redraws this part only
def show_pooling(feature_map: np.ndarray | None) -> None:
    st.subheader("Pooling the output: max vs average")
    sizes = st.columns(2)
    size = sizes[0].slider("Pool window", 1, 4, 2, key="concepts.pool_size")
    stride = sizes[1].slider("Pool stride", 1, 4, 2, key="concepts.pool_stride")
    if feature_map is None:
        st.caption(NO_OUTPUT)
        return
    try:
        both = pg.compare_pooling(feature_map, size, stride)  # ~1 ms: not worth a cache
    except InvalidConfig as err:
        st.error(str(err))
        return
    views = st.columns(3)
    for view, res in zip(views, (both.max, both.avg), strict=False):
        title = f"{'Max' if res.kind == 'max' else 'Average'} pooling: {res.rows.output} × {res.cols.output}"
        view.image(pg.enlarge(pg.to_rgb(res.output)), caption=title, width="stretch")
    first = " (R)" if both.values.shape[0] == 3 else ""  # where max and average disagree most
    views[2].altair_chart(
        values_chart({f"Pooled window ({both.row}, {both.col}){first}": both.values[:1]}), width="content"
    )
    views[2].markdown(
        f"max = **{both.max.output[0, both.row, both.col]:.4f}**, "
        f"average = **{both.avg.output[0, both.row, both.col]:.4f}**  \n`{both.max.rows.formula}`"
    )


@st.fragment  # another filter redraws this part only: the stride, padding and depth do not depend on it
def show_filter(image: np.ndarray, described: str, stride: int, padding: int | str, settings_work: bool) -> None:
    st.subheader("What the filter produces")
    result = None
    with st.columns(2)[0]:  # the filter, and what is wrong with it, half the page wide
        try:  # a hand-typed cell that is not a number, or a filter larger than the (padded) input: said here
            kernels, kernel_name = pick_filter()
            result = convolved(image, kernels, stride, padding) if settings_work else None
        except InvalidConfig as err:
            st.error(str(err))
    if result is None:
        st.image(pg.enlarge(pg.to_rgb(image)), caption=f"Input: {described}")
        st.info(NO_OUTPUT)
    else:
        show_output(image, result, described, kernel_name, padding)
    show_pooling(None if result is None else result.output)


@st.fragment  # choosing the filters of the layer redraws this part only
def show_depth(image: np.ndarray, stride: int, padding: int | str, settings_work: bool) -> None:
    st.subheader("Depth: several filters at once")
    default = ["Sobel x", "Sobel y", "Laplacian edge"]
    chosen = st.multiselect("Filters of one layer", list(pg.PRESETS), default, key="concepts.depth")
    if not chosen:
        st.info("Choose at least one filter.")
        return
    try:
        stack = convolved(image, [pg.PRESETS[n] for n in chosen], stride, padding)
    except InvalidConfig as err:  # the settings' own error is shown beside them already: say it once
        st.error(str(err)) if settings_work else st.caption(NO_OUTPUT)
        return
    (depth, height, width), k = stack.output.shape, stack.weights.shape[-1]
    st.markdown(
        f"**depth = {depth}**: {depth} filters → output {depth} × {height} × {width}. A layer's filters "
        f"share one size, so smaller ones sit in a {k}×{k} frame of zeros."
    )
    for view, name, fmap in zip(st.columns(depth), chosen, stack.output, strict=False):
        view.image(pg.enlarge(pg.to_rgb(fmap[None])), caption=name, width="stretch")


st.title("🧮 Concepts: convolution and pooling")
st.markdown(
    "A filter is a small window slid over the image; at each place it multiplies the pixels under it by "
    "its weights and adds them up. Pick an input, set **stride** and **padding**, choose a filter and watch "
    "the article's formula **output = (W − F + 2P) / S + 1** at work. Every number here is PyTorch's."
)

left, right = st.columns(2)
with left:
    image, described = pick_input()
with right:
    stride = st.slider("Stride (S)", 1, 6, 1, key="concepts.stride")
    mode = st.radio("Padding (P)", ["number", "same", "valid"], horizontal=True, key="concepts.padding_mode")
    padding = int(st.number_input("Zeros on each side", 0, 6, 0, key="concepts.padding")) if mode == "number" else mode
    try:
        pg.check_settings(stride, padding)
        settings_work = True
    except InvalidConfig as err:
        st.error(str(err))  # beside the controls that caused it; the rest of the page stays
        settings_work = False

show_filter(image, described, stride, padding, settings_work)
show_depth(image, stride, padding, settings_work)
