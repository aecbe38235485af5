"""AppTest: the Concepts playground renders every filter and shows PyTorch's sizes, fits and sums."""

import re

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.shapes import conv_output_size
from cnn_core.teaching import playground as pg
from tests.conftest import ROOT

SIZE = re.compile(r"Output size: (\d+) × (\d+)")
SUM = re.compile(r"Sum of the \d+ products = \*\*(-?[\d.]+)\*\*; PyTorch's output at \(\d+, \d+\) = \*\*(-?[\d.]+)\*\*")


@pytest.fixture
def at() -> AppTest:
    app = AppTest.from_file(str(ROOT / "views" / "concepts.py"), default_timeout=60).run()
    assert not app.exception
    return app


def shown(at: AppTest, pattern: re.Pattern) -> tuple[str, ...]:
    found = [m for m in (pattern.search(md.value) for md in at.markdown) if m]
    assert len(found) == 1, [md.value for md in at.markdown]
    return found[0].groups()


def column_of(at: AppTest, key: str):
    """The column that holds the widget with this key: where an error about it belongs."""
    return next(c for c in at.columns if any(w.key == key for w in [*c.selectbox, *c.slider, *c.radio]))


def use_gradient(at: AppTest) -> None:
    """A pattern input whose every pixel differs, so any change of filter changes the numbers."""
    at.radio(key="concepts.source").set_value("pattern").run()
    at.selectbox(key="concepts.pattern").set_value("gradient").run()


def test_every_kernel_preset_renders_with_its_output_and_step_through(at):
    for name in [*pg.PRESETS, "sepia"]:
        at.selectbox(key="concepts.kernel").set_value(name).run()
        assert not at.exception, name
        assert not at.error, name
        total, value = shown(at, SUM)
        assert float(total) == pytest.approx(float(value), abs=1e-4)
        assert len(at.image) >= 3  # input, output, pooled maps


def test_default_page_shows_a_digit_and_the_output_size_from_the_formula(at):
    assert at.title[0].value.startswith("🧮 Concepts")
    assert shown(at, SIZE) == ("26", "26")  # 28×28 digit, Sobel x 3×3, stride 1, no padding
    assert at.success[0].value.startswith("Stride 1 fits")
    assert "depth = 3" in " ".join(md.value for md in at.markdown)


@pytest.mark.parametrize("stride,mode,padding", [(2, "number", 0), (3, "number", 2), (1, "same", 0), (4, "valid", 0)])
def test_output_size_text_matches_conv_output_size(at, stride, mode, padding):
    at.slider(key="concepts.stride").set_value(stride)
    at.radio(key="concepts.padding_mode").set_value(mode).run()
    if mode == "number":
        at.number_input(key="concepts.padding").set_value(padding).run()
    expected = conv_output_size(28, 3, stride, padding if mode == "number" else mode)
    assert shown(at, SIZE) == (str(expected), str(expected))
    total, value = shown(at, SUM)
    assert float(total) == pytest.approx(float(value), abs=1e-4)


def test_stride_that_does_not_fit_shows_how_many_rows_pytorch_drops(at):
    at.selectbox(key="concepts.kernel").set_value("Gaussian blur")
    at.slider(key="concepts.stride").set_value(2).run()  # (28 − 5) / 2 + 1 = 12.5 → 12
    assert shown(at, SIZE) == ("12", "12")
    warning = at.warning[0].value
    assert "Stride 2 does not fit" in warning and "drops the last 1 row and the last 1 column" in warning
    assert any("12.50 → 12 (floored)" in md.value for md in at.markdown)


def test_same_padding_with_stride_2_is_one_error_line_and_the_page_stays_usable(at):
    at.slider(key="concepts.stride").set_value(2)
    at.radio(key="concepts.padding_mode").set_value("same").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["filter: 'same' padding needs stride 1 (PyTorch refuses it with stride 2)"]
    at.slider(key="concepts.stride").set_value(1).run()  # fix it with the same widgets
    assert not at.error and shown(at, SIZE) == ("28", "28")


def test_same_padding_with_stride_2_shows_the_error_beside_the_controls_and_keeps_the_rest_of_the_page(at):
    at.slider(key="concepts.pool_size").set_value(3).run()  # a setting of the user's, further down
    at.slider(key="concepts.stride").set_value(2)
    at.radio(key="concepts.padding_mode").set_value("same").run()
    assert [e.value for e in column_of(at, "concepts.stride").error] == [
        "filter: 'same' padding needs stride 1 (PyTorch refuses it with stride 2)"
    ]
    headings = [h.value for h in at.subheader]
    assert headings == [
        "What the filter produces",
        "Pooling the output: max vs average",
        "Depth: several filters at once",
    ]
    assert len(at.image) == 1 and at.image[0].proto.imgs[0].caption.startswith("Input: a ")  # the input is still shown
    assert at.slider(key="concepts.pool_size").value == 3 and at.multiselect(key="concepts.depth").value
    at.slider(key="concepts.stride").set_value(1).run()
    assert not at.error and at.slider(key="concepts.pool_size").value == 3 and len(at.image) >= 6


def test_editing_the_custom_kernel_changes_the_output(at):
    use_gradient(at)
    at.selectbox(key="concepts.kernel").set_value("custom").run()
    assert at.data_editor[0].value.shape == (3, 3)
    before = shown(at, SUM)
    at.session_state["concepts.custom3"] = {"edited_rows": {1: {"1": 3.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    after = shown(at, SUM)
    assert not at.exception and float(after[1]) == pytest.approx(3 * float(before[1]), abs=5e-4)  # shown to 4 places
    at.session_state["concepts.custom3"] = {"edited_rows": {1: {"1": None}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["filter cell (row 1, column 1) is empty or not a number"]


def test_a_bad_custom_cell_is_named_by_the_labels_the_grid_shows_and_the_page_stays(at):
    at.selectbox(key="concepts.kernel").set_value("custom").run()
    grid = at.data_editor[0].value
    assert list(grid.columns) == ["0", "1", "2"] and list(grid.index) == [0, 1, 2]  # counted from 0, both ways
    edits = {"edited_rows": {2: {"0": None}}, "added_rows": [], "deleted_rows": []}  # row 2, column "0"
    at.session_state["concepts.custom3"] = edits
    at.run()
    assert not at.exception
    beside = column_of(at, "concepts.kernel")
    assert [e.value for e in beside.error] == ["filter cell (row 2, column 0) is empty or not a number"]
    assert len(at.error) == 1
    assert any("depth = 3" in md.value for md in at.markdown)  # depth does not need the custom filter


def test_a_pool_window_larger_than_the_feature_map_is_one_error_line(at):
    at.radio(key="concepts.source").set_value("pattern").run()
    at.slider(key="concepts.pattern_size").set_value(8)
    at.selectbox(key="concepts.kernel").set_value("Gaussian blur")
    at.slider(key="concepts.stride").set_value(6).run()  # (8 − 5) / 6 + 1 → 1
    assert not at.exception and shown(at, SIZE) == ("1", "1")
    assert "concepts.row" not in [s.key for s in at.slider]  # one output position: nothing to step through
    assert [e.value for e in at.error] == [
        "pooling: the 2×2 window is larger than the 1×1 input, so there is no output"
    ]
    assert any("depth = 3" in md.value for md in at.markdown)  # the rest of the page still renders
