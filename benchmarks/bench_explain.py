"""Every attribution method for one 28×28 digit on the bundled default model: must total ≤ 300 ms.

Warms each method up once, then takes the median of several runs per method (one private model copy,
as the Explain page makes). Prints per-method times, the total, and PASS/FAIL against the budget.
With the defaults (IG 32 steps, occlusion 4×4 every 2 px = 169 windows in one batch, SmoothGrad 16
samples) the total was 21-23 ms on the project's quiet 2-core CPU, 35-47 ms with two busy processes
beside it; when other jobs oversubscribe the cores, torch's two threads wait on each other and single
runs can take 10× longer (--threads 1 degrades more gently).

    python -m benchmarks.bench_explain [--runs 15] [--index 0] [--threads N]
"""

import argparse
import statistics
import sys
import time

import torch

from cnn_core import explain
from cnn_core.data import load_dataset, to_float
from cnn_core.model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

BUDGET_MS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--index", type=int, default=0, help="which held-out test digit to explain")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_checkpoint(DEFAULT_CHECKPOINT).model
    data = load_dataset("mnist", download=False)
    x = to_float(data.test_x[args.index : args.index + 1])
    private = explain.private_copy(model)
    target = explain.predicted_class(private, x)
    print(
        f"{DEFAULT_CHECKPOINT}, test digit {args.index} (label {int(data.test_y[args.index])}, predicted {target}), "
        f"torch {torch.__version__} on {torch.get_num_threads()} CPU threads, median of {args.runs} runs"
    )
    total = 0.0
    for name, method in explain.METHODS.items():
        options = explain.default_options(name, model)
        explain.run_method(name, private, x, target, options)  # warm-up
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            explain.run_method(name, private, x, target, options)
            times.append((time.perf_counter() - start) * 1000)
        median = statistics.median(times)
        total += median
        shown = ", ".join(f"{k}={v}" for k, v in options.items()) or "(no options)"
        print(f"  {method.title:22s} {median:7.1f} ms   {shown}")
    start = time.perf_counter()
    explain.attribute_all(model, x, target)  # what the page calls: one copy, all methods
    together = (time.perf_counter() - start) * 1000
    verdict = "PASS" if total <= BUDGET_MS else "FAIL"
    print(f"  {'total (sum of medians)':22s} {total:7.1f} ms   {verdict}: budget {BUDGET_MS:.0f} ms")
    print(f"  {'attribute_all, one call':22s} {together:7.1f} ms")
    return 0 if total <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
