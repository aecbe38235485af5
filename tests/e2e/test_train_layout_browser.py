"""Real browser: at 1280 px the Train page's numbers and its conv block's pickers are shown whole, not cut."""

from playwright.sync_api import expect

CUT = """els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.value || e.textContent)"""


def test_at_1280_px_no_metric_and_no_padding_picker_is_cut(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(app_url + "/train")
    expect(page.get_by_text("multiply-adds per image")).to_be_visible(timeout=60_000)
    metrics = page.locator("[data-testid='stMetric'] *")
    expect(metrics.first).to_be_visible()
    assert metrics.evaluate_all(CUT) == []
    pickers = page.locator("[data-testid='stExpander'] input[role='combobox']")
    expect(pickers.first).to_have_value("number")
    assert pickers.evaluate_all(CUT) == []
    context.close()
