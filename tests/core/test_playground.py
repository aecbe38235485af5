"""The playground must show PyTorch's numbers: every output, window sum, size and pooled value checked against it."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cnn_core.errors import BadImage, InvalidConfig
from cnn_core.shapes import conv_output_size
from cnn_core.teaching import playground as pg

RNG = np.random.default_rng(0)
GREY = RNG.random((1, 13, 11), dtype=np.float32)
RGB = RNG.random((3, 12, 12), dtype=np.float32)


def direct_conv(image: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: int | str = 0) -> np.ndarray:
    """The channel mean convolved with the 2-D kernel, straight through F.conv2d."""
    mean = torch.from_numpy(image.mean(axis=0, keepdims=True))[None]
    return F.conv2d(mean, torch.from_numpy(kernel)[None, None], stride=stride, padding=padding)[0].numpy()


@pytest.mark.parametrize("name", list(pg.PRESETS))
@pytest.mark.parametrize("image", [GREY, RGB], ids=["grey", "rgb"])
def test_each_preset_gives_what_a_direct_conv2d_gives(name, image):
    result = pg.convolve(image, name, stride=2, padding=1)
    np.testing.assert_allclose(result.output, direct_conv(image, pg.PRESETS[name], 2, 1), rtol=1e-5, atol=1e-5)


def test_sepia_mixes_red_green_blue_at_every_pixel_like_the_article():
    result = pg.convolve(RGB, "sepia")
    assert result.output.shape == RGB.shape and result.weights.shape == (3, 3, 1, 1)  # a 1×1 filter per colour
    np.testing.assert_allclose(result.output, np.einsum("oc,chw->ohw", pg.SEPIA, RGB), rtol=1e-5)
    grey = pg.convolve(GREY, "sepia").output  # a grey input is mixed as (g, g, g)
    np.testing.assert_allclose(grey, np.einsum("oc,chw->ohw", pg.SEPIA, np.repeat(GREY, 3, axis=0)), rtol=1e-5)
    assert (grey[0] >= grey[1]).all() and (grey[1] >= grey[2]).all()  # warm: red ≥ green ≥ blue


CASES = [
    (3, 1, 0),
    (3, 2, 1),
    (5, 2, 2),
    (5, 3, 0),
    (3, 1, "same"),
    (4, 1, "same"),
    (2, 1, "same"),
    (4, 3, "valid"),
    (2, 2, 1),
]


@pytest.mark.parametrize("size,stride,padding", CASES)
def test_window_products_sum_to_pytorchs_output_at_every_position(size, stride, padding):
    kernel = RNG.standard_normal((size, size)).astype(np.float32)
    result = pg.convolve(RGB, kernel, stride, padding)
    for row in range(result.rows.output):
        for col in range(result.cols.output):
            window = pg.window_at(RGB, kernel, stride, padding, row, col)
            np.testing.assert_allclose(window.products, window.pixels * window.weights)
            assert window.total == pytest.approx(float(result.output[0, row, col]), abs=1e-5)


def test_same_padding_with_an_even_filter_puts_the_extra_zero_after_like_pytorch():
    assert pg.pad_sides("same", 4) == (1, 2) and pg.pad_sides("same", 5) == (2, 2) and pg.pad_sides(3, 5) == (3, 3)
    corner = np.zeros((4, 4), dtype=np.float32)
    corner[0, 0] = 1  # picks the pixel one up and one left of each output position
    image = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    out = pg.convolve(image, corner, 1, "same").output[0]
    assert out[0].tolist() == [0] * 6 and out[1, 1] == image[0, 0, 0] and out[5, 5] == image[0, 4, 4]


@pytest.mark.parametrize("size,kernel,stride,padding", [(28, 5, 2, 0), (28, 3, 4, 0), (13, 3, 3, 0), (20, 5, 3, 2)])
def test_stride_that_does_not_fit_reports_the_rows_pytorch_drops(size, kernel, stride, padding):
    image = RNG.random((1, size, size), dtype=np.float32)
    result = pg.convolve(image, np.ones((kernel, kernel), np.float32), stride, padding)
    torch_out = F.conv2d(
        torch.from_numpy(image)[None], torch.ones(1, 1, kernel, kernel), stride=stride, padding=padding
    )
    out = torch_out.shape[-1]
    assert result.output.shape[-1] == out == result.rows.output
    assert not result.rows.fits and result.rows.dropped == result.rows.padded - ((out - 1) * stride + kernel) > 0
    assert "floored" in result.rows.formula


def test_a_fitting_stride_drops_nothing_and_the_formula_is_exact():
    result = pg.convolve(np.zeros((1, 28, 28), np.float32), "Gaussian blur", 1, 2)  # the article's conv1
    assert result.rows.fits and result.rows.dropped == 0 and result.output.shape == (1, 28, 28)
    assert result.rows.formula == "(28 − 5 + 2·2) / 1 + 1 = 28"


def test_settings_with_no_output_are_refused_in_one_line():
    with pytest.raises(InvalidConfig, match="'same' padding needs stride 1"):
        pg.convolve(GREY, "identity", 2, "same")
    with pytest.raises(InvalidConfig, match="larger than the 3×3 input") as err:
        pg.convolve(np.zeros((1, 3, 3), np.float32), "Gaussian blur")
    assert "\n" not in str(err.value)
    with pytest.raises(InvalidConfig, match="outside the 11×9 output"):
        pg.window_at(GREY, "identity", 1, 0, 11, 0)
    with pytest.raises(InvalidConfig):
        pg.convolve(GREY, "no such filter")


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 16),
    w=st.integers(1, 16),
    k=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"])),
)
def test_output_shape_is_what_shapes_conv_output_size_says(h, w, k, stride, padding):
    image = np.ones((1, h, w), np.float32)
    kernel = np.ones((k, k), np.float32)
    pads = 0 if padding == "valid" else k - 1 if padding == "same" else 2 * padding
    if (padding == "same" and stride > 1) or k > min(h, w) + pads:
        with pytest.raises(InvalidConfig):
            pg.convolve(image, kernel, stride, padding)
        return
    result = pg.convolve(image, kernel, stride, padding)
    expected = (1, conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding))
    assert result.output.shape == expected == (1, result.rows.output, result.cols.output)


@pytest.mark.parametrize("size,stride", [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_max_and_average_pooling_match_pytorch_and_the_shown_window(size, stride):
    fmap = pg.convolve(GREY, "Sobel x").output
    x = torch.from_numpy(fmap)[None]
    biggest, mean = pg.pool(fmap, size, stride, "max"), pg.pool(fmap, size, stride, "avg")
    np.testing.assert_allclose(biggest.output, F.max_pool2d(x, size, stride)[0].numpy())
    np.testing.assert_allclose(mean.output, F.avg_pool2d(x, size, stride)[0].numpy(), rtol=1e-6)
    assert biggest.rows.output == biggest.output.shape[1] and biggest.cols.output == biggest.output.shape[2]
    r, c = biggest.output.shape[1] - 1, biggest.output.shape[2] - 1
    values = pg.pool_window(fmap, size, stride, r, c)
    assert values.shape == (1, size, size)
    assert values.max() == biggest.output[0, r, c] and values.mean() == pytest.approx(mean.output[0, r, c], abs=1e-6)


def test_pooling_refuses_an_unknown_kind_and_a_window_larger_than_the_map():
    with pytest.raises(InvalidConfig, match="'max' or 'avg'"):
        pg.pool(GREY, 2, 2, "median")
    with pytest.raises(InvalidConfig, match="larger than"):
        pg.pool(np.zeros((1, 2, 2), np.float32), 3, 1, "max")


def test_depth_gives_one_feature_map_per_filter_in_one_shared_size():
    names = ["Sobel x", "Gaussian blur", "Laplacian edge"]
    stack = pg.convolve(GREY, [pg.PRESETS[n] for n in names], stride=1, padding=2)
    assert stack.output.shape == (3, 13, 11) and stack.weights.shape == (3, 1, 5, 5)
    np.testing.assert_allclose(stack.output[1], pg.convolve(GREY, "Gaussian blur", 1, 2).output[0], atol=1e-6)
    np.testing.assert_allclose(stack.output[0], pg.convolve(GREY, "Sobel x", 1, 1).output[0], atol=1e-6)  # 3×3 in 5×5
    with pytest.raises(InvalidConfig, match="at least one"):
        pg.convolve(GREY, [])


def test_a_hand_typed_filter_is_read_and_a_bad_cell_is_named_counting_from_0_like_the_grid():
    kernel = pg.kernel_from_cells([[0, "1", 0], [1.5, -4, 1], [0, 1, 0]])
    assert kernel.dtype == np.float32 and kernel[1, 0] == 1.5
    for bad, where in ((None, "row 1, column 2"), (float("nan"), "row 1, column 2"), ("x", "row 1, column 2")):
        with pytest.raises(InvalidConfig, match=f"{where}.*empty or not a number"):
            pg.kernel_from_cells([[0, 0, 0], [0, 1, bad], [0, 0, 0]])
    with pytest.raises(InvalidConfig, match=r"cell \(row 0, column 0\) is 1e\+09: keep weights between"):
        pg.kernel_from_cells([[1e9]])
    with pytest.raises(InvalidConfig, match="square"):
        pg.kernel_from_cells([[1, 2], [3]])


@pytest.mark.parametrize("name", pg.PATTERNS)
def test_generated_patterns_are_small_grey_images_with_edges(name):
    image = pg.pattern(name, 20)
    assert image.shape == (1, 20, 20) and image.dtype == np.float32
    assert image.min() == 0 and image.max() == 1


def test_dataset_digit_is_a_grey_28x28_with_its_label(bundled):
    image, label = pg.dataset_digit(bundled, 0)
    assert image.shape == (1, 28, 28) and 0 <= image.min() < image.max() <= 1
    assert label == bundled.classes[int(bundled.test_y[0])]
    with pytest.raises(InvalidConfig, match="between 0 and 999"):
        pg.dataset_digit(bundled, len(bundled.test_x))


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_upload_keeps_its_colour_and_is_shrunk_to_a_readable_size():
    photo = np.zeros((300, 150, 3), np.uint8)
    photo[..., 0] = 200  # red
    image = pg.upload_image(png(photo))
    assert image.shape == (3, 64, 32) and image[0].mean() > 0.7 and image[1].max() == 0
    grey = pg.upload_image(png(np.full((20, 30), 128, np.uint8)))
    assert grey.shape == (1, 20, 30)  # equal R, G, B: shown once
    with pytest.raises(BadImage, match="not an image"):
        pg.upload_image(b"GIF89a but not really")


def test_display_keeps_the_sign_of_an_edge_map_and_marks_what_is_dropped():
    rgb = pg.to_rgb(np.array([[[1.0, 0.0, -2.0]]], np.float32))
    assert rgb[0, 0].tolist() == [255, 128, 128] and rgb[0, 1].tolist() == [255, 255, 255]
    assert rgb[0, 2].tolist() == [0, 0, 255]  # the most negative value is full blue
    assert pg.to_rgb(np.full((1, 2, 2), 0.5, np.float32))[0, 0].tolist() == [128, 128, 128]
    image = np.zeros((1, 28, 28), np.float32)
    result = pg.convolve(image, "Gaussian blur", 2)  # drops the last row and column
    window = pg.window_at(image, "Gaussian blur", 2, 0, 0, 0)
    overlay = pg.input_overlay(image, result, 2, window)
    assert overlay.shape == (56, 56, 3)
    assert overlay[-1, 20, 0] > 100 and overlay[20, 20, 0] == 0  # orange where PyTorch drops, plain elsewhere
    assert overlay[0, 0].tolist() == [255, 215, 0]  # the window's yellow outline


def test_window_of_a_done_convolution_is_window_at_without_redoing_it():
    kernel = RNG.standard_normal((3, 3)).astype(np.float32)
    result = pg.convolve(RGB, kernel, 2, 1)
    for row, col in ((0, 0), (3, 5), (result.rows.output - 1, result.cols.output - 1)):
        done, fresh = pg.window_of(result, RGB, row, col), pg.window_at(RGB, kernel, 2, 1, row, col)
        np.testing.assert_array_equal(done.products, fresh.products)
        assert (done.top, done.left, done.total) == (fresh.top, fresh.left, fresh.total)
    with pytest.raises(InvalidConfig, match="outside the 6×6 output"):
        pg.window_of(result, RGB, 6, 0)


def test_compare_pooling_picks_the_window_where_max_and_average_differ_most():
    fmap = np.zeros((1, 4, 4), np.float32)
    fmap[0, 2, 3] = 8.0  # one spike: max keeps it, average spreads it over 4
    both = pg.compare_pooling(fmap, 2, 2)
    assert (both.row, both.col) == (1, 1) and both.values.shape == (1, 2, 2)
    assert both.max.output[0, 1, 1] == 8.0 and both.avg.output[0, 1, 1] == 2.0
    np.testing.assert_array_equal(both.values, pg.pool_window(fmap, 2, 2, 1, 1))


def test_strongest_is_the_position_of_the_largest_magnitude_even_when_negative():
    output = np.zeros((3, 4, 5), np.float32)
    output[0, 1, 2], output[0, 3, 4], output[2, 0, 1] = 2.0, -5.0, 9.0
    assert pg.strongest(output) == (3, 4) and pg.strongest(output, channel=2) == (0, 1)


def test_stride_fit_says_whether_every_pixel_is_reached_and_what_is_dropped():
    image = np.zeros((1, 28, 28), np.float32)
    fits, why = pg.stride_fit(pg.convolve(image, "Sobel x", 1))
    assert fits and why.startswith("Stride 1 fits")
    fits, why = pg.stride_fit(pg.convolve(image, "Gaussian blur", 2))  # (28 − 5) / 2 + 1 = 12.5
    assert not fits and "drops the last 1 row and the last 1 column" in why
    fits, why = pg.stride_fit(pg.convolve(np.zeros((1, 28, 29), np.float32), "Sobel x", 4))  # rows 25 % 4, cols 26 % 4
    assert not fits and "the last 1 row and the last 2 columns" in why


def test_enlarge_uses_whole_pixels_and_outlines_one():
    rgb = pg.to_rgb(np.eye(4, dtype=np.float32)[None])
    big = pg.enlarge(rgb, size=40)
    assert big.shape == (40, 40, 3) and (big[:10, :10] == rgb[0, 0]).all()
    marked = pg.enlarge(rgb, (1, 2), size=40)
    assert marked[10, 25].tolist() == [255, 215, 0] and marked[15, 25].tolist() == rgb[1, 2].tolist()


def test_stride_and_padding_are_checked_before_any_filter_like_a_conv_layer():
    pg.check_settings(2, 1)
    pg.check_settings(1, "same")
    with pytest.raises(InvalidConfig, match="'same' padding needs stride 1"):
        pg.check_settings(3, "same")
