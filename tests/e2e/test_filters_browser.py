"""Real browser: the Filters page draws the filter grid and every feature map, and a digit drawn on its
canvas goes through the network layer by layer."""

from playwright.sync_api import expect


def test_filters_and_feature_maps_render_and_a_drawing_goes_through_the_network(page, app_url):
    page.goto(app_url + "/filters")
    expect(page.get_by_text("6 filters of conv1")).to_be_visible(timeout=60_000)
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()  # the filter grid
    expect(page.get_by_text("act3: 120 × 1 × 1")).to_be_visible()  # the last feature map of the test digit
    expect(page.get_by_text("−scale · 0 · +scale")).to_be_visible()  # the colour legend above the maps

    page.get_by_text("Draw", exact=True).click()
    expect(page.get_by_text("act3: 120 × 1 × 1")).to_have_count(0)
    canvas = page.locator("canvas.upper-canvas").first
    expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()  # the shared 280-px canvas sits below the fold of a 1000-px window
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + 60)
    page.mouse.down()
    for step in range(1, 21):  # a "7": across, then down to the left
        x, y = (60 + step * 6, 60) if step <= 10 else (120 - (step - 10) * 4, 60 + (step - 10) * 14)
        page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.up()
    expect(page.get_by_text("input (as the model sees it)")).to_be_visible()
    expect(page.get_by_text("act3: 120 × 1 × 1")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
