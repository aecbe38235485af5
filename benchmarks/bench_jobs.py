"""Job manager overhead, measured in one run:

1. images/s of a run launched through the job manager vs the same config trained by the CLI
   (target: >= 90 %);
2. CPU used by an idle app (streamlit server with the job manager, a finished run open on the Train
   page in Chromium) over 20 s (target: < 5 % of one core);
3. warm workers against a fresh process per run (``CNN_LAB_WARM_WORKERS=0``): Launch -> first point through the
   job manager (ten 1-epoch runs, one at a time: submit -> first metric row) and, with ``--page``, on the Train page
   in Chromium (click -> first point shown, FIRST_POINT_JS), median and range (target: <= 1 s); and runs per minute
   for ten 1-epoch runs queued at once;
4. warm workers here against a ``ray start --head`` cluster of 2 CPUs started on this machine (what the cluster path
   costs, not another machine's speed): the same through the job manager, and the CLI's whole process for one
   1-epoch run, ``cnn-lab train`` against ``cnn-lab train --address``.

    python -m benchmarks.bench_jobs [--epochs 20] [--only first-point|cluster] [--page [--page-tries 10]]
"""

import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.jobs import JobManager
from cnn_core.runs import RunStore
from tests.e2e.serve import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[1]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc, no extra dependency)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def throughput(epochs: int, runs_dir: Path) -> tuple[float, float]:
    env = {**os.environ, "CNN_LAB_RUNS": str(runs_dir / "cli")}
    out = subprocess.run(
        [sys.executable, "-m", "cnn_core", "train", "--epochs", str(epochs), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cli = json.loads(out.stdout.splitlines()[-1])["images_per_s"]
    manager = JobManager(RunStore(runs_dir / "jobs"))
    run_id = manager.submit(RunConfig(train=TrainConfig(epochs=epochs)))
    row = manager.wait(run_id, timeout=900)
    manager.close()
    return cli, row.images_per_s


def idle_cpu(runs_dir: Path, seconds: float = 20.0) -> float:
    from playwright.sync_api import sync_playwright

    server, url = start_app(runs_dir / "jobs")  # its store holds the finished run from the throughput test
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url)
            page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Train").click()
            page.get_by_text("test accuracy", exact=True).wait_for(timeout=60_000)
            time.sleep(3)  # let the first render settle
            before, start = cpu_seconds(server.pid), time.monotonic()
            time.sleep(seconds)
            used = cpu_seconds(server.pid) - before
            elapsed = time.monotonic() - start
            browser.close()
    finally:
        stop_app(server)
    return 100 * used / elapsed


def _ready(manager: JobManager, timeout: float = 120) -> None:
    """Until the manager's warm workers, or its cluster bridge, said they are ready (what an app's first page load
    gives them)."""
    if manager.bridge is not None:
        deadline = time.monotonic() + timeout
        while not manager.bridge.slots:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster bridge did not start: {manager.bridge.error}")
            manager.pump()
            time.sleep(0.05)
        return
    if manager.pool is None:
        return
    manager.pool.fill()
    _workers_ready(manager.store.root / "workers.log", len(manager.pool.workers), timeout)


def _workers_ready(log: Path, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("ready") >= count:
            return
        time.sleep(0.05)
    raise TimeoutError("the warm workers did not start")


def first_points(runs_dir: Path, warm: bool, runs: int = 10, address: str | None = None) -> tuple[list[float], float]:
    """Seconds from submit to the run's first metric row for ``runs`` 1-epoch runs, one at a time; runs per minute
    of ``runs`` 1-epoch runs queued at once. ``address``: on that Ray cluster (as many at once as it holds)."""
    folder = runs_dir / f"first-{'cluster' if address else 'warm' if warm else 'fresh'}"
    manager = JobManager(RunStore(folder), max_concurrent=1, warm=warm, address=address)
    try:
        _ready(manager)
        one_epoch = RunConfig(train=TrainConfig(epochs=1))
        waits = []
        for _ in range(runs):
            start = time.perf_counter()
            run_id = manager.submit(one_epoch)
            while manager.store.last_metric(run_id) is None:
                time.sleep(0.005)
            waits.append(time.perf_counter() - start)
            assert manager.wait(run_id, timeout=300).status == "completed"
        start = time.perf_counter()
        ids = [manager.submit(one_epoch) for _ in range(runs)]
        for run_id in ids:
            assert manager.wait(run_id, timeout=600).status == "completed"
        per_minute = runs / (time.perf_counter() - start) * 60
    finally:
        manager.close(stop_runs=True)
    return waits, per_minute


# What "the first point is shown" means on the Train page, watched in the page itself (MutationObserver,
# performance.now()): from the Launch click to the first DOM change that shows either the live progress line
# drawn from the run's newest metric row ("epoch 1/1 · 12,345 images/s · ..."), or, for a run that ended between
# two polls of the live fragment, the finished run (the run picker shows it completed with its accuracy and the
# "test accuracy" metric below shows the same value, not a stale one from the run before). Both times are kept;
# the earlier one is the run's first point. A 1-epoch run on the bundled sample ends about 0.4 s after its first
# step with warm workers, well within the fragment's 1 s poll, so the finished result is often all a user sees.
FIRST_POINT_JS = r"""
(() => {
  const fp = (window.__fp = { name: null, t0: null, live: null, finished: null });
  const progress = /epoch 1\/1 · [\d,]+ images\/s/;
  const fresh = (el) => el.closest('[data-stale="true"]') === null;
  const text = (root, id) => (root.querySelector(`[data-testid="${id}"]`) || { textContent: '' }).textContent.trim();
  const finished = () => {
    const box = [...document.querySelectorAll('[data-testid="stSelectbox"]')].find(
      (el) => text(el, 'stWidgetLabel') === 'run');
    const input = box && box.querySelector('input');
    const label = input && input.value;
    const match = label && label.startsWith(fp.name + ' · ') && label.match(/ · completed · ([\d.]+%)$/);
    return !!match && [...document.querySelectorAll('[data-testid="stMetric"]')].some(
      (el) => fresh(el) && text(el, 'stMetricLabel') === 'test accuracy' && text(el, 'stMetricValue') === match[1]);
  };
  const look = () => {
    if (fp.t0 === null) return;
    const now = performance.now();
    if (fp.live === null && [...document.querySelectorAll('[data-testid="stProgress"]')].some(
        (el) => fresh(el) && progress.test(el.textContent))) fp.live = now;
    if (fp.finished === null && finished()) fp.finished = now;
  };
  document.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    if (fp.name !== null && fp.t0 === null && button && button.textContent.includes('Launch training')) {
      fp.t0 = performance.now();
    }
  }, true);
  new MutationObserver(look).observe(document.body, { subtree: true, childList: true, characterData: true,
    attributes: true });
  fp.arm = (name) => { fp.name = name; fp.t0 = fp.live = fp.finished = null; };
})();
"""
IDLE_JS = """() => document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state')
    === 'notRunning' && document.querySelector('[data-testid="stStatusWidget"]') === null"""


def _idle(page: "Page") -> None:
    """Until the page's script run is over (a Launch click during another rerun would wait for it)."""
    page.wait_for_timeout(500)  # the rerun an input just asked for has begun
    page.wait_for_function(IDLE_JS, timeout=60_000)


def _first_row_at(db: Path, name: str, timeout: float = 180) -> tuple[float, float]:
    """When run ``name`` was queued (its ``created``) and when its first metric row was in the store (read-only,
    every 10 ms), wall clock."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    query = "SELECT runs.created FROM metrics JOIN runs ON runs.id = metrics.run_id WHERE runs.name = ? LIMIT 1"
    deadline = time.monotonic() + timeout
    try:
        while (row := con.execute(query, (name,)).fetchone()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} wrote no metric row")
            time.sleep(0.01)
        return float(row[0]), time.time()
    finally:
        con.close()


def _launch_and_watch(page: "Page", folder: Path, name: str) -> tuple[float, str, float, float]:
    """Launch a run named ``name``: seconds from the click to its first point shown, what showed it, from the click
    to the run queued (the click's way to the server and its callback), and from its first metric row in the store
    to the page showing it (the page's own share)."""
    page.get_by_label("run name (optional)").fill(name)
    page.get_by_label("run name (optional)").press("Enter")
    _idle(page)
    page.evaluate("name => window.__fp.arm(name)", name)
    with ThreadPoolExecutor(1) as pool:
        stored = pool.submit(_first_row_at, folder / "runs.db", name)
        page.get_by_role("button", name=re.compile("Launch training")).click()
        page.wait_for_function("window.__fp.finished !== null", timeout=180_000)
        origin, t0, live, finished = page.evaluate(
            "[performance.timeOrigin, window.__fp.t0, window.__fp.live, window.__fp.finished]"
        )
        shown, how = (live, "live") if live is not None and live <= finished else (finished, "finished")
        queued_at, row_at = stored.result()
        return (shown - t0) / 1000, how, queued_at - (origin + t0) / 1000, (origin + shown) / 1000 - row_at


def page_first_point(runs_dir: Path, warm: bool, tries: int) -> list[tuple[float, str, float, float]]:
    """Seconds from the Train page's Launch click to its first point shown (FIRST_POINT_JS) in Chromium, for
    ``tries`` 1-epoch runs one after another, the app's warm workers (if any) ready; each with what showed it
    and its shares (``_launch_and_watch``)."""
    from playwright.sync_api import sync_playwright

    folder = runs_dir / f"page-{'warm' if warm else 'fresh'}"
    folder.mkdir()
    server, url = start_app(folder, env={"CNN_LAB_WARM_WORKERS": "1" if warm else "0"})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + "/train")
            page.get_by_role("slider", name="epochs").first.focus()
            page.keyboard.press("Home")  # 1 epoch
            if warm:
                _workers_ready(folder / "workers.log", 1)  # the app's first page load starts them
            page.evaluate(FIRST_POINT_JS)
            seen = [_launch_and_watch(page, folder, f"first-point-{i}") for i in range(tries)]
            browser.close()
    finally:
        stop_app(server)
    return seen


def _spread(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):.2f} s ({min(seconds):.2f}–{max(seconds):.2f})"


def compare_first_points(runs_dir: Path, page_tries: int) -> None:
    """Fresh process per run vs warm workers: Launch -> first point through the job manager (and on the page)."""
    print("Launch -> first point, 1-epoch runs on the bundled sample: median (min–max); target <= 1 s")
    for warm in (False, True):
        waits, per_minute = first_points(runs_dir, warm)
        line = f"{'warm workers ' if warm else 'fresh process'}: job manager {_spread(waits)} of {len(waits)}"
        if page_tries:
            seen = page_first_point(runs_dir, warm, page_tries)
            how = ", ".join(f"{how} {sum(s[1] == how for s in seen)}" for how in ("live", "finished"))
            line += f"; Train page {_spread([s[0] for s in seen])} of {len(seen)} (shown by: {how})"
            line += f"\n    page: click -> run queued {_spread([s[2] for s in seen])}; "
            line += f"first metric row stored -> shown {_spread([s[3] for s in seen])}"
            line += "\n    page, each (l: live progress, f: finished result): "
            line += " ".join(f"{s[0]:.2f}{s[1][0]}" for s in seen)
        print(line + f"\n    ten runs queued at once: {per_minute:.1f} runs/minute", flush=True)


def compare_cluster(runs_dir: Path) -> None:
    """Warm workers here against a ``ray start --head`` cluster of 2 CPUs on this machine (what the cluster path
    itself costs): through the job manager, and the CLI's whole process for one 1-epoch run."""
    from tests.ray_head import ray_head

    print("Ray cluster (2 CPUs, this machine) against warm workers here, 1-epoch runs on the bundled sample")
    with ray_head(runs_dir) as address:
        for name, where in (("warm workers here", None), ("Ray cluster", address)):
            waits, per_minute = first_points(runs_dir, True, address=where)
            print(
                f"{name:>17}: Launch -> first point, first run {waits[0]:.2f} s, then {_spread(waits[1:])}; "
                f"ten runs queued at once: {per_minute:.1f} runs/minute",
                flush=True,
            )
        cli = {}
        for name, extra in (("cnn-lab train", []), ("cnn-lab train --address", ["--address", address])):
            start = time.perf_counter()
            cmd = [sys.executable, "-m", "cnn_core", "train", "--epochs", "1", "--runs-dir", str(runs_dir / "cli")]
            subprocess.run(cmd + extra, cwd=ROOT, capture_output=True, check=True)
            cli[name] = time.perf_counter() - start
    print("CLI, the whole process: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in cli.items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--only", choices=["first-point", "cluster"], help="only the warm-worker or only the cluster comparison"
    )
    parser.add_argument("--page", action="store_true", help="also Launch -> first point on the Train page (Chromium)")
    parser.add_argument("--page-tries", type=int, default=10, help="runs launched from the page per mode (--page)")
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    if args.only == "first-point" or args.only is None:
        compare_first_points(runs_dir, args.page_tries if args.page else 0)
    if args.only == "cluster" or args.only is None:
        compare_cluster(runs_dir)
    if args.only:
        return
    cli, jobs = throughput(args.epochs, runs_dir)
    print(f"LeNet-5, default recipe, {args.epochs} epochs on the bundled sample")
    print(
        f"CLI: {cli:,.0f} images/s; job manager worker: {jobs:,.0f} images/s; ratio {jobs / cli:.3f} (target >= 0.90)"
    )
    idle = idle_cpu(runs_dir)
    print(f"idle app with a finished run open on the Train page: {idle:.2f} % of one core (target < 5 %)")


if __name__ == "__main__":
    main()
