"""Real browser: upload a zip of class folders on the Data page, train one epoch on it, then look at its colour
filters on Filters and explain a colour photo with it on Explain."""

import io
import re

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.serve import start_app, stop_app
from tests.imagesets import CLASSES, draw_image, make_image_folder, zip_folder

CLASS_NAMES = ("blue-disc", "green-square", "red-disc")


@pytest.fixture
def app_url(tmp_path_factory):
    """An app of its own: the colour run this test trains must not become the newest run other pages open on."""
    proc, url = start_app(tmp_path_factory.mktemp("e2e-data"))
    yield url
    stop_app(proc)


def _open(page: Page, app_url: str, title: str) -> None:
    page.goto(app_url)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=title).click()
    expect(page.locator("h1").filter(has_text=re.compile(title))).to_be_visible()


def _choose(page: Page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(option)
    page.keyboard.press("Enter")


def _photo_png() -> bytes:
    picture = draw_image(*CLASSES["red-disc"], np.random.default_rng(5), size=(90, 60))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_a_zip_becomes_a_dataset_trains_and_its_run_shows_colour_filters_and_explains_a_photo(page, app_url, tmp_path):
    archive = zip_folder(make_image_folder(tmp_path / "shapes", per_class=16, classes=CLASS_NAMES), "shapes/")
    page.goto(app_url)
    _open(page, app_url, "Data")
    page.get_by_label("Name").fill("shapes")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        files=[{"name": "shapes.zip", "mimeType": "application/zip", "buffer": archive}]
    )
    page.get_by_role("button", name="Add dataset").click()
    expect(page.get_by_text("Added shapes: 48 images in 3 classes")).to_be_visible(timeout=60_000)
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()  # images per class
    expect(page.get_by_text("red-disc", exact=True).first).to_be_visible()  # a caption of the samples

    _open(page, app_url, "Train")
    _choose(page, "dataset", "shapes")
    expect(page.get_by_text(re.compile(r"\(32 − 5 \+ 2·0\) / 1 \+ 1 = 28"))).to_be_visible()  # LeCun's conv1
    page.get_by_role("slider", name="epochs").first.focus()
    page.keyboard.press("Home")
    page.get_by_label("run name (optional)").fill("colour-run")
    page.get_by_label("run name (optional)").press("Enter")
    page.get_by_role("button", name=re.compile("Launch training")).click()
    expect(page.get_by_text("test accuracy", exact=True)).to_be_visible(timeout=120_000)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)

    _open(page, app_url, "Filters")
    _choose(page, "Model", "colour-run")
    expect(page.get_by_text(re.compile("as colour", re.I)).first).to_be_visible(timeout=30_000)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)

    _open(page, app_url, "Explain")
    _choose(page, "Model", "colour-run")
    page.get_by_text("Upload a photo", exact=True).click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        files=[{"name": "photo.png", "mimeType": "image/png", "buffer": _photo_png()}]
    )
    expect(page.get_by_text("square (crop)")).to_be_visible(timeout=30_000)
    expect(page.locator("[data-testid='stMetricValue']").first).to_have_text(re.compile("|".join(CLASS_NAMES)))
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
