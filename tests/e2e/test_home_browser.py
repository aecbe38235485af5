"""Real browser: `streamlit run app.py` opens on the home page."""

import re

import pytest
from playwright.sync_api import expect


def test_app_opens_on_home_with_bundled_models(page, app_url):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="CNN Lab")).to_be_visible()
    expect(page.get_by_text("Training device")).to_be_visible()
    expect(page.get_by_text("Bundled models")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


@pytest.mark.slow
def test_a_deep_link_on_a_fresh_server_runs_through_app_py(browser, tmp_path):
    """Opening /train first (a bookmark after a restart) must still get app.py's navigation and layout."""
    from tests.e2e.serve import start_app, stop_app

    proc, url = start_app(tmp_path)
    try:
        page = browser.new_page()
        page.goto(url + "/train")
        expect(page.get_by_role("button", name=re.compile("Launch training"))).to_be_visible(timeout=30_000)
        nav = page.get_by_role("navigation", name="App pages")
        expect(nav.get_by_role("link", name="Filters & feature maps")).to_be_visible()
        expect(nav.get_by_role("link", name="app", exact=True)).to_have_count(0)
        page.close()
    finally:
        stop_app(proc)


STEPS = ["Concepts", "Data", "Train", "Compare", "Sweep", "Filters & feature maps", "Embedding", "Explain"]


def test_home_shows_every_step_in_order_and_the_first_leads_to_concepts(page, app_url):
    page.goto(app_url)
    steps = page.locator(".st-key-home-path").get_by_test_id("stPageLink-NavLink")
    expect(steps).to_have_count(len(STEPS))
    expect(steps).to_have_text([re.compile(re.escape(title) + "$") for title in STEPS])  # the icon is a number
    steps.first.click()
    expect(page).to_have_url(re.compile(r"/concepts$"))
    expect(page.get_by_role("heading", name="Concepts: convolution and pooling")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
