"""Issue 13's numbers: favourite images (first time and from the cache), the bundled models' invariance
curves, and one embedding projection, on the held-out sample digits and (when present) the official
MNIST test set.

"First time" is the one pass over the test split that the Filters page runs behind its progress bar;
"cached" is what the page does on every later rerun with that result in memory: sort one filter's
responses and draw its 18 pictures.

    python -m benchmarks.bench_learning [--official DIR] [--runs 5]
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from cnn_core.compare import invariance
from cnn_core.data import load_dataset, to_float
from cnn_core.explain import embedding, favourites
from cnn_core.model.checkpoint import BUNDLED, load_checkpoint

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist-5k-official-test"


def timed(function, runs: int) -> float:
    """Median seconds of ``runs`` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def favourites_cost(model, images: torch.Tensor, runs: int) -> tuple[float, float]:
    first = timed(lambda: favourites.strongest_activations(model, images), runs)
    acts = favourites.strongest_activations(model, images)
    floats = to_float(images).numpy()

    def rerun() -> None:
        most, least = favourites.favourites(acts, "conv2", 3)
        for index in [*most, *least]:
            position = acts.where["conv2"][index, 3]
            field = favourites.field_at(model.config, "conv2", position, acts.width["conv2"])
            favourites.favourite_picture(floats[index], field)

    return first, timed(rerun, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", default=str(OFFICIAL), help="IDX folder with the official 10k test set")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    splits = {"held-out sample (1,000)": load_dataset("mnist", root="/nonexistent", download=False)}
    if Path(args.official).is_dir():
        splits["official MNIST test (10,000)"] = load_dataset("mnist", data_dir=args.official, download=False)
    models = {name.removeprefix("lenet5-mnist-"): load_checkpoint(name).model for name in BUNDLED}
    for split, data in splits.items():
        first, cached = favourites_cost(models["max"], data.test_x, args.runs)
        print(f"favourites on {split}: first {first * 1000:.0f} ms, cached {cached * 1000:.1f} ms")
        start = time.perf_counter()
        embedding.frames([(1, models["max"])], data.test_x, data.test_y.numpy())
        print(f"embedding on {split}: {(time.perf_counter() - start) * 1000:.0f} ms")
        start = time.perf_counter()
        curves = invariance.curves({n: [m] for n, m in models.items()}, data.test_x, data.test_y)
        print(f"invariance on {split} (first {invariance.MAX_IMAGES:,}): {time.perf_counter() - start:.1f} s")
        table = curves.pivot_table(index=["kind", "amount"], columns="run", values="mean")
        print(table.map("{:.2%}".format).to_string())
        print(invariance.summary(curves))


if __name__ == "__main__":
    main()
