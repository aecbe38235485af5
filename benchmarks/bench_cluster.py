"""Runs on a Ray cluster against runs on this machine's warm workers, measured in one run.

A ``ray start --head`` cluster with 2 CPUs is started here (stopped by its PID at the end), so the figures are
what the cluster path itself costs, not another machine's speed:

1. through the job manager, 1-epoch runs on the bundled sample: Launch -> first live point (the cluster's first
   run, when Ray starts a worker process and imports torch on the node, then the median of ten, one at a time),
   and runs per minute for ten runs queued at once; the same on warm local workers;
2. the CLI's whole process for one 1-epoch run: ``cnn-lab train`` here and ``cnn-lab train --address``.

    python -m benchmarks.bench_cluster [--runs 10]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.jobs import JobManager
from cnn_core.runs import RunStore
from tests.ray_head import ray_head

ROOT = Path(__file__).resolve().parents[1]
ONE_EPOCH = RunConfig(train=TrainConfig(epochs=1))


def _first_point(manager: JobManager) -> float:
    start = time.perf_counter()
    run_id = manager.submit(ONE_EPOCH)
    while manager.store.last_metric(run_id) is None:
        manager.pump()
        time.sleep(0.005)
    wait = time.perf_counter() - start
    assert manager.wait(run_id, timeout=300).status == "completed"
    return wait


def _ready(manager: JobManager, timeout: float = 180) -> None:
    """Until the workers or the bridge said they are ready (what an app's first page load gives them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        manager.pump()
        bridge = manager.bridge
        if bridge is not None and bridge.slots:
            return
        log = manager.store.root / "workers.log"
        if bridge is None and log.exists() and log.read_text().count("ready") >= manager.max_concurrent:
            return
        time.sleep(0.05)
    raise TimeoutError("the workers or the bridge did not start")


def job_manager(folder: Path, address: str | None, runs: int) -> tuple[float, float, float]:
    """(first run's first point, median first point of ``runs`` more, runs per minute of ``runs`` queued at once)."""
    manager = JobManager(RunStore(folder), max_concurrent=1, start_thread=False, address=address)
    try:
        _ready(manager)
        first = _first_point(manager)
        median = statistics.median(_first_point(manager) for _ in range(runs))
        start = time.perf_counter()
        ids = [manager.submit(ONE_EPOCH) for _ in range(runs)]
        for run_id in ids:
            assert manager.wait(run_id, timeout=600).status == "completed"
        per_minute = runs / (time.perf_counter() - start) * 60
    finally:
        manager.close(stop_runs=True)
    return first, median, per_minute


def cli_seconds(folder: Path, address: str | None) -> float:
    cmd = [sys.executable, "-m", "cnn_core", "train", "--epochs", "1", "--runs-dir", str(folder)]
    start = time.perf_counter()
    subprocess.run(cmd + (["--address", address] if address else []), cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    os.environ.pop("RAY_ADDRESS", None)
    print(f"1-epoch runs on the bundled sample, through the job manager ({args.runs} of each); load {os.getloadavg()}")
    with ray_head(work) as address:
        rows = {
            "warm workers here": job_manager(work / "here", None, args.runs),
            "Ray cluster (2 CPUs)": job_manager(work / "cluster", address, args.runs),
        }
        for name, (first, median, per_minute) in rows.items():
            print(
                f"{name:>21}: Launch -> first point {first:.2f} s for the first run, median {median:.2f} s; "
                f"{per_minute:.1f} runs/minute queued at once"
            )
        here, there = cli_seconds(work / "cli-here", None), cli_seconds(work / "cli-cluster", address)
    print(f"CLI, the whole process: cnn-lab train {here:.2f} s, cnn-lab train --address {there:.2f} s")


if __name__ == "__main__":
    main()
