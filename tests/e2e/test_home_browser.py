"""Real browser: `streamlit run app.py` opens on the home page."""

from playwright.sync_api import expect


def test_app_opens_on_home_with_bundled_models(page, app_url):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="CNN Lab")).to_be_visible()
    expect(page.get_by_text("Training device")).to_be_visible()
    expect(page.get_by_text("Bundled models")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
