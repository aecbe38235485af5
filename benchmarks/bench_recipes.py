"""Our default recipe against the article's, each as a whole process (start-up included), in one run.

1. MNIST: trained on the 5k sample, scored on the official 10k test set (from ../shared): ours must be
   >= 98.5 % (the article reports 98.48 %).
2. Fashion-MNIST (Debian's full set): ``python -m cnn_core train --epochs 2`` must reach the accuracy
   of the article's 10-epoch recipe in <= 1/8 of its time.

    python -m benchmarks.bench_recipes [--only mnist|fashion]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT.parent / "shared" / "datasets" / "mnist-5k-official-test"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def timed(cmd: list[str]) -> tuple[dict, float]:
    """Run a command, return its last JSON line and its wall-clock seconds."""
    env = {**os.environ, "CNN_LAB_RUNS": tempfile.mkdtemp(prefix="bench-runs-")}
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    return json.loads(out.stdout.strip().splitlines()[-1]), seconds


def compare(label: str, data_dir: Path, our_args: list[str]) -> None:
    print(f"== {label} ({data_dir})", flush=True)
    article, article_s = timed([sys.executable, "benchmarks/article_recipe.py", "--data-dir", str(data_dir)])
    ours, ours_s = timed([sys.executable, "-m", "cnn_core", "train", "--data-dir", str(data_dir), "--json", *our_args])
    print(
        f"article recipe (Adam 1e-4, batch 32, 10 epochs, per-sample DataLoader): "
        f"{article['test_accuracy']:.2%} in {article_s:.1f} s"
    )
    print(
        f"CNN Lab default recipe {' '.join(our_args) or '(defaults)'}: {ours['test_accuracy']:.2%} in {ours_s:.1f} s "
        f"({ours['images_per_s']:.0f} images/s)"
    )
    print(
        f"accuracy difference {100 * (ours['test_accuracy'] - article['test_accuracy']):+.2f} points; "
        f"time ratio ours/article = {ours_s / article_s:.3f} (speed-up {article_s / ours_s:.1f}x)\n",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("mnist", "fashion"))
    args = parser.parse_args()
    if args.only in (None, "mnist"):
        if MNIST_DIR.is_dir():
            compare("MNIST 5k sample -> official 10k test", MNIST_DIR, [])
        else:
            print(f"skipped MNIST: {MNIST_DIR} not found")
    if args.only in (None, "fashion"):
        if FASHION_DIR.is_dir():
            compare("Fashion-MNIST, full", FASHION_DIR, ["--epochs", "2"])
        else:
            print(f"skipped Fashion-MNIST: {FASHION_DIR} not found (apt-get install dataset-fashion-mnist)")


if __name__ == "__main__":
    main()
