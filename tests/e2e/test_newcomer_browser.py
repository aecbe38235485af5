"""Real browser, a newcomer's pass: renames stay on their run, pickers follow a run's status, curves fit
their column with the legend, and one impossible layer keeps the table up to it."""

import os
import re

import pytest
from playwright.sync_api import Page, expect

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.runs import RunStore, Status
from cnn_core.runs.runner import execute_run
from tests.e2e.serve import start_app, stop_app

GROUP = "pool-20261127-120000"


@pytest.fixture(scope="module")
def store_and_url(tmp_path_factory, bundled):
    """An app whose store already holds finished runs: two plain ones and a max-vs-avg pair."""
    from dataclasses import replace

    runs_dir = tmp_path_factory.mktemp("newcomer-runs")
    store = RunStore(runs_dir)
    data = replace(bundled, train_x=bundled.train_x[::8], train_y=bundled.train_y[::8])
    config = RunConfig(train=TrainConfig(epochs=2, batch_size=128, device="cpu"))
    ids = {}
    for name, pool, group in (
        ("alpha", "max", None),
        ("beta", "max", None),
        ("max-seed0", "max", GROUP),
        ("avg-seed0", "avg", GROUP),
    ):
        run = replace(config, model=config.model.with_pooling(pool))
        ids[name] = store.create(run, "mnist", name=name, group_id=group)
        execute_run(store, ids[name], data=data)
    proc, url = start_app(runs_dir)
    yield store, url, ids
    stop_app(proc)


def _open(page: Page, url: str, title: str) -> None:
    page.goto(url)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=title).click()  # not Home's page links
    expect(page.locator("h1").filter(has_text=title)).to_be_visible()


def _choose(page: Page, label: str, option: str) -> None:
    """Type into a selectbox to filter it, then take the first match (sturdier than clicking a listed option
    while the page may still be rerunning)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(option)
    page.keyboard.press("Enter")


@pytest.mark.slow
def test_a_renamed_run_stays_selected_and_a_second_rename_lands_on_it(page, store_and_url):
    store, url, ids = store_and_url
    _open(page, url, "Compare")
    _choose(page, "run", f"alpha ({ids['alpha']})")  # not the first run in the list
    name = page.get_by_label("new name")
    expect(name).to_have_value("alpha")  # the page has rerun for the chosen run
    name.fill("alpha renamed")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_text("Renamed “alpha” to “alpha renamed”.")).to_be_visible()
    picker = page.get_by_role("combobox", name="run", exact=True)
    expect(picker).to_have_value(f"alpha renamed ({ids['alpha']})")
    expect(page.get_by_label("new name")).to_have_value("alpha renamed")
    page.get_by_label("new name").fill("alpha twice")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_text("Renamed “alpha renamed” to “alpha twice”.")).to_be_visible()
    assert store.get(ids["alpha"]).name == "alpha twice"
    assert store.get(ids["avg-seed0"]).name == "avg-seed0"  # the first run in the list was never touched
    expect(picker).to_have_value(f"alpha twice ({ids['alpha']})")


def test_the_train_picker_follows_a_run_that_finishes_while_shown(page, store_and_url):
    store, url, ids = store_and_url
    live = store.create(RunConfig(train=TrainConfig(epochs=1, device="cpu")), "mnist", name="live one", claim=True)
    store.start(live, pid=os.getpid(), device="cpu")  # a living process, so the app does not call it orphaned
    _open(page, url, "Train")
    _choose(page, "run", "live one")
    picker = page.get_by_role("combobox", name="run", exact=True)
    expect(picker).to_have_value(re.compile(r"^live one · .* · running$"))
    store.finish(live, Status.COMPLETED, epochs_done=1, test_accuracy=0.75)
    # the page reruns by itself once the set of running runs changes: a new picker, on the same run
    done = page.locator("input[role=combobox][aria-label='run'][value$='· completed · 75.00%']")
    expect(done).to_be_visible(timeout=15_000)
    expect(picker).to_have_count(1)
    expect(picker).to_have_value(re.compile(r"^live one · "))


CHART_WIDTHS = """() => [...document.querySelectorAll("[data-testid='stVegaLiteChart']")].map(el => {
    const drawn = el.querySelector('canvas, svg');
    return [drawn ? drawn.getBoundingClientRect().width : 0, el.parentElement.getBoundingClientRect().width];
})"""


def _charts_fit(page: Page, at_least: int = 1) -> list[tuple[float, float]]:
    """(drawn width, container width) of every Vega chart on the page, once at least ``at_least`` are laid out
    within their column (Vega lays out after the element appears; a chart that never fits times out)."""
    page.wait_for_function(
        f"() => {{ const w = ({CHART_WIDTHS})(); "
        f"return w.length >= {at_least} && w.every(([d, c]) => d > 0 && d <= c + 1); }}"
    )
    return page.evaluate(CHART_WIDTHS)


@pytest.mark.parametrize("width", [1280, 1920])
@pytest.mark.slow
def test_curves_fit_their_column_at_common_widths(browser, store_and_url, width):
    store, url, ids = store_and_url
    context = browser.new_context(viewport={"width": width, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(30_000)
    _open(page, url, "Train")
    _choose(page, "run", "beta")
    expect(page.get_by_text("loss", exact=True).first).to_be_attached()
    fits = _charts_fit(page)
    assert fits and all(drawn <= container + 1 for drawn, container in fits), fits
    _open(page, url, "Compare")
    expect(page.get_by_text("max pooling: test accuracy")).to_be_visible()
    runs = page.get_by_role("combobox", name="runs", exact=True)
    runs.click()
    runs.fill("beta")
    page.keyboard.press("Enter")  # the first run matching "beta"
    page.keyboard.press("Escape")
    expect(page.get_by_text("Best and final value per metric")).to_be_visible()
    fits = _charts_fit(page, at_least=5)
    assert len(fits) >= 5 and all(drawn <= container + 1 for drawn, container in fits), fits
    context.close()


def test_an_impossible_layer_keeps_the_table_and_says_what_caused_it(page, store_and_url):
    _, url, _ = store_and_url
    _open(page, url, "Train")
    page.get_by_role("slider", name="filter size").first.focus()
    for _ in range(2):
        page.keyboard.press("ArrowLeft")  # conv1 filter 5 -> 3
    expect(page.get_by_role("slider", name="filter size").first).to_have_value("3")
    expect(page.get_by_text("(28 − 3 + 2·2) / 1 + 1 = 30")).to_be_visible()  # the page has rerun
    page.get_by_role("slider", name="stride").first.focus()
    page.keyboard.press("ArrowRight")  # conv1 stride 1 -> 2
    expect(page.get_by_text("Made impossible by your change: conv1 stride 1 → 2")).to_be_visible()
    table = page.locator("[data-testid='stTable']")
    expect(table).to_contain_text("conv2")
    expect(table).to_contain_text("impossible")
    expect(page.get_by_role("button", name=re.compile("Launch training"))).to_be_disabled()
    exceptions = page.locator("[data-testid='stException']")
    assert exceptions.count() == 0, exceptions.all_inner_texts()
