"""Job manager overhead, measured in one run:

1. images/s of a run launched through the job manager vs the same config trained by the CLI
   (target: >= 90 %);
2. CPU used by an idle app (streamlit server with the job manager, a finished run open on the Train
   page in Chromium) over 20 s (target: < 5 % of one core);
3. warm workers against a fresh process per run (``CNN_LAB_WARM_WORKERS=0``): Launch -> first live point
   through the job manager (median of ten 1-epoch runs, one at a time) and on the Train page in Chromium (target:
   <= 1 s), and runs per minute for ten 1-epoch runs queued at once.

    python -m benchmarks.bench_jobs [--epochs 20] [--only first-point]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.jobs import JobManager
from cnn_core.runs import RunStore
from tests.e2e.serve import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app

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
    """Until the manager's warm workers said they are ready (what an app's first page load gives them)."""
    if manager.pool is None:
        return
    manager.pool.fill()
    log = manager.store.root / "workers.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("ready") >= len(manager.pool.workers):
            return
        time.sleep(0.05)
    raise TimeoutError("the warm workers did not start")


def first_points(runs_dir: Path, warm: bool, runs: int = 10) -> tuple[float, float]:
    """Median seconds from submit to the run's first metric row, one run at a time; runs per minute of ``runs``
    1-epoch runs queued at once."""
    manager = JobManager(RunStore(runs_dir / f"first-{'warm' if warm else 'fresh'}"), max_concurrent=1, warm=warm)
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
    return statistics.median(waits), per_minute


def page_first_point(runs_dir: Path, warm: bool, tries: int = 3) -> float:
    """Median seconds from the Train page's Launch click to its first live point (the progress line with
    images/s) in Chromium, the app's warm workers (if any) ready."""
    from playwright.sync_api import sync_playwright

    folder = runs_dir / f"page-{'warm' if warm else 'fresh'}"
    folder.mkdir()
    server, url = start_app(folder, env={"CNN_LAB_WARM_WORKERS": "1" if warm else "0"})
    waits = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + "/train")
            page.get_by_role("slider", name="epochs").first.focus()
            page.keyboard.press("Home")  # 1 epoch
            deadline = time.monotonic() + 120  # the app's workers import torch once
            while warm and time.monotonic() < deadline and (folder / "workers.log").read_text().count("ready") < 1:
                time.sleep(0.1)
            for _ in range(tries):
                page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=60_000)
                start = time.perf_counter()
                page.get_by_role("button", name=re.compile("Launch training")).click()
                page.get_by_text(re.compile(r"epoch 1/1 · [\d,]+ images/s")).first.wait_for(timeout=120_000)
                waits.append(time.perf_counter() - start)
                page.get_by_text("test accuracy", exact=True).wait_for(timeout=120_000)
            browser.close()
    finally:
        stop_app(server)
    return statistics.median(waits)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--only", choices=["first-point"], help="only the warm-worker comparison")
    parser.add_argument("--page", action="store_true", help="also Launch -> first point on the Train page (Chromium)")
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    if args.only == "first-point" or args.only is None:
        print("Launch -> first live point, 1-epoch runs on the bundled sample (median of 10 through the job manager)")
        for warm in (False, True):
            wait, per_minute = first_points(runs_dir, warm)
            page = f", Train page {page_first_point(runs_dir, warm):.2f} s" if args.page else ""
            print(
                f"{'warm workers ' if warm else 'fresh process'}: job manager {wait:.2f} s{page} (target <= 1 s); "
                f"ten runs queued at once: {per_minute:.1f} runs/minute"
            )
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
