"""A local Ray Tune sweep vs the same runs one after another through the CLI, in one run:

8 trials (max/avg pooling × conv1 filter size 3/5 × 2 seeds, 3 epochs, the bundled MNIST sample), first as
``cnn-lab train`` eight times in a row, then as one ``cnn-lab sweep`` with Ray embedded (1 CPU per trial).
Reports the total wall time ratio (target: the sweep is no slower), Ray's start time and the per-trial
overhead of each path (wall time a run or trial spends outside its training loop). The one-after-another
runs are timed twice: as they come (PyTorch's default threads) and with one thread each, as a sweep's
trials have.

    python -m benchmarks.bench_sweep [--epochs 3] [--json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnn_core.config import RunConfig
from cnn_core.config.sweep import SweepConfig
from cnn_core.runs import RunStore
from cnn_core.sweeps.space import plan

ROOT = Path(__file__).resolve().parents[1]
SPACE = {"model.conv.*.pool": {"grid": ["max", "avg"]}, "model.conv.0.kernel_size": {"grid": [3, 5]}}


def sweep_config(epochs: int) -> SweepConfig:
    base = RunConfig.from_dict({"train": {"epochs": epochs}})
    return SweepConfig.from_dict({"name": "bench", "base": base.to_dict(), "space": SPACE, "seeds": [0, 1]})


def cli(*args: str, env: dict) -> tuple[float, str]:
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "cnn_core", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - began, out.stdout


def one_after_another(sweep: SweepConfig, work: Path, env: dict) -> dict:
    """Each trial's config through ``cnn-lab train --config``, in a row; wall times and training times."""
    walls, trains = [], []
    for i, trial in enumerate(plan(sweep).trials):
        config = work / f"trial{i}.json"
        config.write_text(trial.run.to_json())
        wall, stdout = cli("train", "--config", str(config), "--json", "--runs-dir", str(work / "cli"), env=env)
        walls.append(wall)
        trains.append(json.loads(stdout.splitlines()[-1])["seconds"])
    return {"total_s": sum(walls), "train_s": trains, "overhead_s": [w - t for w, t in zip(walls, trains, strict=True)]}


def as_sweep(sweep: SweepConfig, work: Path, env: dict) -> dict:
    """The same trials as one local sweep; wall time, Ray's start and each trial's time outside training."""
    spec = work / "sweep.json"
    spec.write_text(sweep.to_json())
    wall, stdout = cli("sweep", str(spec), "--json", "--runs-dir", str(work / "sweep"), env=env)
    summary = json.loads(stdout.splitlines()[-1])
    store = RunStore(work / "sweep")
    runs = [store.get(t["run_id"]) for t in summary["trials"]]
    assert all(r.status == "completed" for r in runs), [r.error for r in runs]
    started = min(r.created for r in runs)
    return {
        "total_s": wall,
        "ray_start_s": store.sweeps.get(summary["sweep_id"]).cluster["ray_start_s"],
        "first_trial_after_s": started - store.sweeps.get(summary["sweep_id"]).started,
        "train_s": [r.seconds for r in runs],
        "overhead_s": [r.ended - r.created - r.seconds for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sweep = sweep_config(args.epochs)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        work = Path(tmp)
        # the bundled 5,000-digit sample on every machine: no dataset folder to find
        env = {**os.environ, "CNN_LAB_DATA": str(work / "no-data"), "CNN_LAB_DATASETS": str(work / "datasets")}
        env.pop("RAY_ADDRESS", None)
        serial = one_after_another(sweep, work, env)
        # the same, each run on one thread: on a busy machine two OpenMP threads per run can cost far more
        # than they give, and a sweep's trials get one CPU each
        single = one_after_another(sweep, work, {**env, "OMP_NUM_THREADS": "1"})
        ray = as_sweep(sweep, work, env)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    result = {
        "trials": len(serial["train_s"]),
        "epochs": args.epochs,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),  # other work on the machine skews both paths
        "one_after_another_s": round(serial["total_s"], 1),
        "sweep_s": round(ray["total_s"], 1),
        "ratio_sweep_over_serial": round(ray["total_s"] / serial["total_s"], 3),
        "one_after_another_1_thread_s": round(single["total_s"], 1),
        "ratio_sweep_over_serial_1_thread": round(ray["total_s"] / single["total_s"], 3),
        "ray_start_s": ray["ray_start_s"],
        "first_trial_after_s": round(ray["first_trial_after_s"], 1),
        "serial_train_s_mean": round(mean(serial["train_s"]), 2),
        "serial_1_thread_train_s_mean": round(mean(single["train_s"]), 2),
        "sweep_train_s_mean": round(mean(ray["train_s"]), 2),
        "serial_overhead_s_per_run": round(mean(serial["overhead_s"]), 2),
        "sweep_overhead_s_per_trial": round(mean(ray["overhead_s"]), 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['trials']} trials × {args.epochs} epochs on {result['cpus']} CPUs "
        f"(load average at the end: {result['load_average_1min']})"
    )
    print(f"one after another (cnn-lab train): {result['one_after_another_s']:.1f} s")
    print(f"one after another, 1 thread each: {result['one_after_another_1_thread_s']:.1f} s")
    print(
        f"local Ray sweep (cnn-lab sweep):   {result['sweep_s']:.1f} s  ratio {result['ratio_sweep_over_serial']} "
        f"({result['ratio_sweep_over_serial_1_thread']} against 1 thread each)"
    )
    print(f"Ray start {result['ray_start_s']:.2f} s; first trial started {result['first_trial_after_s']} s in")
    print(
        f"training loop per run: {result['serial_train_s_mean']} s alone (all cores), "
        f"{result['serial_1_thread_train_s_mean']} s alone (1 thread), "
        f"{result['sweep_train_s_mean']} s in the sweep (1 core, 2 at once)"
    )
    print(
        f"outside the loop: {result['serial_overhead_s_per_run']} s per CLI run (process, imports, data) vs "
        f"{result['sweep_overhead_s_per_trial']} s per trial (data, reports, checkpoints)"
    )


if __name__ == "__main__":
    main()
