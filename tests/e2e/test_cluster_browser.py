"""Real browser, real Ray: with the lab on a ``ray start --head`` cluster (``RAY_ADDRESS``, the operator's setting),
a run launched on the Train page trains on the cluster, shows its live progress and result, names its Ray node,
and the Admin page shows the cluster and its room."""

import re

import pytest
from playwright.sync_api import expect

from cnn_core.runs import RunStore, Status
from tests.e2e.serve import start_app, stop_app
from tests.ray_head import cluster_node_ids

pytestmark = pytest.mark.slow


def test_a_run_launched_on_the_train_page_trains_on_the_labs_cluster(browser, cluster, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    proc, url = start_app(runs, env={"RAY_ADDRESS": cluster})
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url + "/admin")
        expect(page.get_by_text(re.compile(rf"The Ray cluster at {re.escape(cluster)}"))).to_be_visible(timeout=120_000)
        expect(page.get_by_text(re.compile(r"2 CPUs, 0 GPUs; room for 2 more run"))).to_be_visible(timeout=60_000)
        page.goto(url + "/train")
        page.get_by_role("slider", name="epochs").first.focus()
        page.keyboard.press("Home")  # 1 epoch
        page.get_by_label("run name (optional)").fill("on-the-cluster")
        page.get_by_label("run name (optional)").press("Enter")
        page.get_by_role("button", name=re.compile("Launch training")).click()
        expect(page.get_by_text("test accuracy", exact=True)).to_be_visible(timeout=180_000)
        run = next(r for r in RunStore(runs).list() if r.name == "on-the-cluster")
        assert run.status is Status.COMPLETED and run.node in cluster_node_ids(cluster)
        page.reload()
        expect(page.get_by_text(f"on Ray node {run.node[:8]}").first).to_be_visible(timeout=60_000)
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
    finally:
        context.close()
        stop_app(proc)
