"""Real browser: build a 2-trial sweep on the Sweep page, launch it (a driver process with Ray embedded),
watch both trials finish and the result charts draw."""

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow


def test_launch_a_two_trial_sweep_and_see_both_finish_and_the_charts(page: Page, app_url: str):
    page.goto(app_url + "/sweep")
    expect(page.locator("h1").filter(has_text="Sweep")).to_be_visible(timeout=60_000)  # first load imports torch
    done = page.get_by_text("No sweeps yet").or_(page.get_by_role("combobox", name="sweep", exact=True))
    expect(done.first).to_be_visible(timeout=60_000)  # the page has drawn to its end
    launch = page.get_by_role("button", name=re.compile("Launch sweep"))
    builder = page.locator("details").filter(has_text="New sweep").first
    if builder.get_attribute("open") is None:  # the builder is folded once some sweep exists
        page.get_by_text("New sweep").click()
    expect(launch).to_be_visible()
    vary = page.get_by_role("combobox", name="parameters to vary")
    vary.click()
    vary.fill("pooling")
    page.get_by_role("option", name=re.compile("pooling")).click()
    page.keyboard.press("Escape")
    expect(page.get_by_label(re.compile("pooling .every pooling layer. — values"))).to_have_value("max, avg")
    epochs = page.get_by_label("epochs per trial")
    epochs.fill("1")
    epochs.press("Enter")
    expect(page.get_by_text(re.compile(r"^2 trials"))).to_be_visible()
    launch.click()
    expect(page.get_by_text("Launched: its trials appear below")).to_be_visible()
    # the trial table fills in while it runs; then the page redraws once with the results
    expect(page.get_by_text("2 completed of 2")).to_be_visible(timeout=240_000)
    expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile("^Best trial:"))).to_be_visible()
    expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(4, timeout=30_000)
    for title in ("Best so far", "Trials across the varied parameters", "val_accuracy: mean ± std"):
        expect(page.get_by_text(title, exact=True)).to_be_visible()  # Vega drew the chart (titles are SVG text)
    expect(page.get_by_role("button", name="Open on Compare")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
