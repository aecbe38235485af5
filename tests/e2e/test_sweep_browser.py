"""Real browser: a finished sweep's charts are readable as drawn (Streamlit's renderer is the point here)."""

from itertools import pairwise

from playwright.sync_api import expect

from cnn_core.runs import RunStore
from tests.sweeps import finished_sweep

SPACE = {"model.conv.*.pool": {"grid": ["max", "avg"]}, "model.conv.0.kernel_size": {"grid": [3, 5]}}


def test_the_importance_chart_gives_each_parameter_its_own_readable_bar(page, app_url, app_runs_dir):
    finished_sweep(RunStore(app_runs_dir), {"space": SPACE, "seeds": [0, 1], "name": "importance"})
    page.goto(app_url + "/sweep")
    chart = page.locator("[data-testid='stVegaLiteChart']", has_text="Which parameters mattered")
    expect(chart).to_be_visible(timeout=60_000)
    bars = chart.locator("g.mark-rect path")
    expect(bars).to_have_count(3)  # pooling, filter size and the seed
    boxes = [bars.nth(i).bounding_box() for i in range(3)]
    assert all(box["height"] >= 12 for box in boxes), boxes  # bars, not 1-px lines
    tops = sorted(box["y"] for box in boxes)
    assert all(b - a >= 12 for a, b in pairwise(tops)), tops  # one row each: their labels cannot overlap


def test_the_sweep_picker_shows_the_status_the_sweep_has_now(page, app_url, app_runs_dir):
    from cnn_core.config.sweep import SweepConfig
    from cnn_core.runs import SweepStatus

    store = RunStore(app_runs_dir)
    config = SweepConfig.from_dict({"space": {"model.conv.*.pool": {"grid": ["max", "avg"]}}, "name": "moving on"})
    sweep_id = store.sweeps.create(config, claim=True)  # running, as its driver has just claimed it
    page.goto(app_url + "/sweep")
    picker = page.get_by_role("combobox", name="sweep", exact=True)
    expect(picker).to_have_value(f"moving on · {sweep_id[-6:]} · running", timeout=60_000)
    store.sweeps.finish(sweep_id, SweepStatus.COMPLETED)  # what the driver writes at the end
    expect(picker).to_have_value(f"moving on · {sweep_id[-6:]} · completed", timeout=15_000)
