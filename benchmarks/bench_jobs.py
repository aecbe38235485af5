"""Job manager overhead, measured in one run:

1. images/s of a run launched through the job manager vs the same config trained by the CLI
   (target: >= 90 %);
2. CPU used by an idle app (streamlit server with the job manager, a finished run open on the Train
   page in Chromium) over 20 s (target: < 5 % of one core).

    python -m benchmarks.bench_jobs [--epochs 20]
"""

import argparse
import json
import os
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    cli, jobs = throughput(args.epochs, runs_dir)
    print(f"LeNet-5, default recipe, {args.epochs} epochs on the bundled sample")
    print(
        f"CLI: {cli:,.0f} images/s; job manager worker: {jobs:,.0f} images/s; ratio {jobs / cli:.3f} (target >= 0.90)"
    )
    idle = idle_cpu(runs_dir)
    print(f"idle app with a finished run open on the Train page: {idle:.2f} % of one core (target < 5 %)")


if __name__ == "__main__":
    main()
