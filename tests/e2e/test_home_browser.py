"""Real browser: `streamlit run app.py` opens on the home page."""

import re

from playwright.sync_api import expect


def test_app_opens_on_home_with_bundled_models(page, app_url):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="CNN Lab")).to_be_visible()
    expect(page.get_by_text("Training device")).to_be_visible()
    expect(page.get_by_text("Bundled models")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


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
