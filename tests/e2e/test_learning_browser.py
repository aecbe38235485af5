"""Real browser: a run's epochs play back on Filters (the timer only fires in a real app), a dot of the
Embedding chart opens its image, and Predict first takes a click on the digit."""

import re

import pytest
from playwright.sync_api import Page, expect

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.runs import RunStore
from cnn_core.runs.runner import execute_run
from tests.e2e.serve import start_app, stop_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_with_a_run(tmp_path_factory, browser, small_data):
    """An app whose store holds one finished three-epoch run (the model the pages open on)."""
    runs = tmp_path_factory.mktemp("learning-runs")
    store = RunStore(runs)
    run_id = store.create(RunConfig(train=TrainConfig(epochs=3, batch_size=64, device="cpu")), "mnist", "three")
    execute_run(store, run_id, data=small_data)
    proc, url = start_app(runs)
    yield url
    stop_app(proc)


def slider_value(page: Page) -> str:
    return page.locator("[data-testid='stSliderThumbValue']").first.inner_text()


def test_play_steps_through_the_epochs_on_its_own_and_stops_at_the_last(page, app_with_a_run):
    page.goto(app_with_a_run + "/filters")
    expect(page.get_by_text("How far each layer's filters moved")).to_be_visible(timeout=60_000)
    assert slider_value(page) == "3"
    page.get_by_role("button", name="▶ Play").click()  # at the last epoch: starts again from the first
    thumb = page.locator("[data-testid='stSliderThumbValue']").first
    expect(page.get_by_role("button", name="⏸ Pause")).to_be_visible(timeout=30_000)
    expect(thumb).to_have_text("2", timeout=40_000)  # moved on by the timer alone (1 was brief on a busy machine)
    expect(thumb).to_have_text("3", timeout=40_000)
    expect(page.get_by_role("button", name="▶ Play")).to_be_visible(timeout=40_000)  # stopped by itself
    expect(page.get_by_text(re.compile(r"6 filters of conv1"))).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def test_clicking_a_dot_of_the_embedding_shows_its_image(page, app_with_a_run):
    page.goto(app_with_a_run + "/embedding")
    chart = page.locator("[data-testid='stVegaLiteChart']").first
    expect(chart).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Click a dot to see its image here.")).to_be_visible()
    box = page.locator("[data-testid='stVegaLiteChart'] .marks").first
    area = box.bounding_box()
    shown = page.get_by_text(re.compile(r"test image #\d+ · \d"))
    # Dots crowd the middle of a PCA picture: try points on a grid around it until one is hit.
    for dx in (0.5, 0.45, 0.55, 0.4, 0.6, 0.35, 0.65):
        for dy in (0.5, 0.45, 0.55, 0.4, 0.6):
            page.mouse.click(area["x"] + area["width"] * dx * 0.8, area["y"] + area["height"] * dy)
            try:
                expect(shown).to_be_visible(timeout=3_000)
                break
            except AssertionError:
                continue
        else:
            continue
        break
    expect(shown).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def test_predict_first_takes_a_click_on_the_digit_and_scores_the_reveal(page, app_with_a_run):
    page.goto(app_with_a_run + "/explain")
    page.get_by_text("Predict first", exact=True).click()
    expect(page.get_by_text("Click where it will look.")).to_be_visible(timeout=60_000)
    digit = page.locator("[data-testid='stVegaLiteChart'] .marks").first
    area = digit.bounding_box()
    page.mouse.click(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)  # the middle of the digit
    where = page.get_by_test_id("stCaptionContainer").filter(has_text="Where it will look")
    expect(where).to_contain_text("centre", timeout=20_000)
    page.locator("[data-testid='stButtonGroup'] button").filter(has_text=re.compile(r"^7$")).last.click()
    page.get_by_role("button", name="Reveal").click()
    expect(page.get_by_text(re.compile("the model answered"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"^[01]/1$")).first).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
