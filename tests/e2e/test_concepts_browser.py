"""Real browser: on the Concepts page, moving the stride slider changes the output size the formula gives."""

import io

import numpy as np
from PIL import Image
from playwright.sync_api import expect

from cnn_core.shapes import conv_output_size


def test_changing_the_stride_changes_the_output_size_and_flags_the_misfit(page, app_url):
    page.goto(app_url + "/concepts")
    size = page.get_by_text("Output size:")
    expect(size).to_have_text(f"Output size: {conv_output_size(28, 3, 1, 0)} × 26")  # a digit, Sobel x 3×3
    expect(page.get_by_text("Stride 1 fits")).to_be_visible()

    stride = page.get_by_role("slider", name="Stride (S)")
    stride.focus()
    stride.press("ArrowRight")  # stride 2: (28 − 3) / 2 + 1 = 13.5 → 13
    expected = conv_output_size(28, 3, 2, 0)
    expect(size).to_have_text(f"Output size: {expected} × {expected}")
    expect(page.get_by_text("Stride 2 does not fit")).to_be_visible()
    expect(page.get_by_text("(28 − 3 + 2·0) / 2 + 1 = 13.50 → 13 (floored)")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_upload_keeps_its_colour_and_a_bad_file_is_one_error_line(page, app_url):
    page.goto(app_url + "/concepts")
    page.get_by_text("upload", exact=True).click()
    chooser = page.locator("[data-testid='stFileUploaderDropzoneInput']")
    chooser.set_input_files(files=[{"name": "digit.png", "mimeType": "image/png", "buffer": b"not a picture"}])
    expect(page.get_by_text("This upload cannot be used: not an image CNN Lab can read")).to_be_visible()
    photo = np.zeros((100, 200, 3), np.uint8)
    photo[:, :100, 0], photo[:, 100:, 2] = 220, 220  # red left half, blue right half
    chooser.set_input_files(files=[{"name": "photo.png", "mimeType": "image/png", "buffer": png(photo)}])
    expect(page.get_by_text("Input: your image in colour (R, G, B), 32 × 64")).to_be_visible()  # shrunk to 64 px
    expect(page.get_by_text(f"Output size: {conv_output_size(32, 3)} × {conv_output_size(64, 3)}")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def test_a_new_filter_and_a_new_position_redraw_their_part_of_the_page(page, app_url):
    """The filter and the output position live in fragments: each change must still reach what depends on it."""
    page.goto(app_url + "/concepts")
    expect(page.get_by_text("Output (Sobel x)")).to_be_visible()
    depth = page.get_by_text("depth = 3")
    expect(depth).to_be_visible()
    page.locator("input[role=combobox][aria-label='Filter']").click()
    page.get_by_role("option", name="Gaussian blur", exact=True).click()
    expect(page.get_by_text("Output (Gaussian blur)")).to_be_visible()
    expect(page.get_by_text("Output size:")).to_have_text(f"Output size: {conv_output_size(28, 5)} × 24")
    expect(depth).to_be_visible()  # the depth section did not depend on the filter and is still there

    at = page.get_by_text("PyTorch's output at")
    before = at.inner_text()
    row = page.get_by_role("slider", name="Output row")
    row.focus()
    row.press("ArrowLeft")
    expect(at).not_to_have_text(before)
    expect(page.get_by_text("Output (Gaussian blur)")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
