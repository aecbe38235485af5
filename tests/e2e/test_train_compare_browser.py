"""Real browser: train a 1-epoch run from the Train page, compare max vs avg, two sessions at once."""

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cnn_core.model.checkpoint import load_checkpoint
from tests.polling import wait_until


def _open(page: Page, app_url: str, title: str) -> None:
    page.goto(app_url)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=title).click()  # not Home's page links
    expect(page.locator("h1").filter(has_text=title)).to_be_visible()


def _set_slider(page: Page, label: str, key: str) -> None:
    """Focus a slider by its label and press a key (Home = minimum)."""
    page.get_by_role("slider", name=label).first.focus()
    page.keyboard.press(key)


@pytest.mark.slow
def test_launch_a_one_epoch_run_and_watch_it_finish(page, app_url):
    _open(page, app_url, "Train")
    expect(page.get_by_text("(28 − 5 + 2·2) / 1 + 1 = 28")).to_be_visible()
    _set_slider(page, "epochs", "Home")  # 1 epoch
    expect(page.get_by_role("slider", name="epochs")).to_have_value("1")
    page.get_by_label("run name (optional)").fill("browser-run")
    page.get_by_label("run name (optional)").press("Enter")
    page.get_by_role("button", name=re.compile("Launch training")).click()
    start = time.time()
    expect(page.get_by_role("combobox", name="run", exact=True)).to_have_value(re.compile("browser-run"))
    # the live chart appears (Vega renders into a canvas/svg) and the run ends with its test accuracy
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible(timeout=90_000)
    expect(page.get_by_text("test accuracy", exact=True)).to_be_visible(timeout=90_000)
    print(f"\nrun finished and shown {time.time() - start:.1f} s after launch")
    with page.expect_download() as download:  # the file is read only when clicked
        page.get_by_role("button", name="checkpoint (.safetensors)").click()
    assert download.value.suggested_filename == "browser-run.safetensors"
    assert load_checkpoint(Path(download.value.path()).read_bytes()).config.conv[0].out_channels == 6
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


@pytest.mark.slow
def test_one_seed_max_vs_avg_comparison_shows_both_curves_and_the_summary(page, app_url):
    _open(page, app_url, "Compare")
    _set_slider(page, "seeds", "Home")  # 1 seed
    epochs = page.get_by_label("epochs")
    epochs.fill("1")
    epochs.press("Enter")
    page.get_by_role("button", name="Launch max vs avg").click()
    expect(page.get_by_text("max pooling: test accuracy")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("avg pooling: test accuracy")).to_be_visible()
    expect(page.get_by_text(re.compile("pooling is ahead by"))).to_be_visible()
    with page.expect_download() as download:  # Streamlit's toolbar has PNG; the page adds SVG
        page.get_by_role("button", name=re.compile("SVG")).first.click()
    assert download.value.suggested_filename == "max-vs-avg-curves.svg"
    assert open(download.value.path(), encoding="utf-8").read().lstrip().startswith("<svg")
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def _launch(page: Page, name: str) -> None:
    _set_slider(page, "epochs", "Home")
    page.get_by_label("run name (optional)").fill(name)
    page.get_by_label("run name (optional)").press("Enter")
    page.get_by_role("button", name=re.compile("Launch training")).click()
    expect(page.get_by_role("combobox", name="run", exact=True)).to_have_value(re.compile(name))


def _run_options_include(page: Page, name: str, timeout: float = 30.0) -> bool:
    """Open the run picker until the option shows up (the rerun that re-reads the store may still be going)."""

    def listed() -> bool:
        page.get_by_role("combobox", name="run", exact=True).click()
        found = page.get_by_role("option", name=re.compile(name)).count() > 0
        page.keyboard.press("Escape")
        return found

    return wait_until(listed, timeout, f"{name} in the run picker", interval=0.5)


@pytest.mark.slow
def test_two_sessions_training_at_once_keep_their_own_controls_and_share_the_run_list(browser, app_url):
    first = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    second = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    for pg in (first, second):
        pg.set_default_timeout(30_000)
        _open(pg, app_url, "Train")
    first.get_by_role("spinbutton", name="seed").fill("7")
    first.get_by_role("spinbutton", name="seed").press("Enter")
    _launch(first, "from-first-session")
    # the second session's controls are its own: the first session's seed and epochs did not leak
    expect(second.get_by_role("spinbutton", name="seed")).to_have_value("0")
    expect(second.get_by_role("slider", name="epochs")).to_have_value("10")
    _launch(second, "from-second-session")
    for pg, other in ((first, "from-second-session"), (second, "from-first-session")):
        _set_slider(pg, "epochs", "ArrowRight")  # any interaction reruns the page, which re-reads the store
        assert _run_options_include(pg, other), f"{other} is missing from the shared run list"
    for pg in (first, second):
        pg.context.close()
