"""Users' own images: decoding a 10,000-image folder of 64×64 JPEGs first and from the cache (target: cached
load ≤ 0.5 s), and training speed of 32×32 colour vs 28×28 grey for the default network.

Writes the JPEGs (coloured shapes on noise, 4 classes) into a temporary folder, decodes them to 32×32 colour
once with an empty cache and then again from it (the load a worker or a page does after the first), and
trains the default LeNet-5 (adapted to each input) for one epoch on 32×32 RGB and on 28×28 grey versions of
the same images, in one run. Prints the times, images/s and the cached-load PASS/FAIL.

    python -m benchmarks.bench_data [--images 10000] [--epochs 1]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cnn_core.config import ModelConfig, RunConfig, TrainConfig
from cnn_core.data import adapt_model, load_dataset
from cnn_core.data.cache import load_image_folder
from cnn_core.training.loop import train
from tests.imagesets import CLASSES, draw_image

CACHED_TARGET_S = 0.5


def write_jpegs(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    names = list(CLASSES)
    for i in tqdm(range(count), desc="writing JPEGs", unit="image", file=sys.stderr):
        name = names[i % len(names)]
        (folder / name).mkdir(parents=True, exist_ok=True)
        draw_image(*CLASSES[name], rng, size=(64, 64)).save(folder / name / f"{i:05d}.jpg", quality=90)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def speed(folder: Path, size: int, channels: int, epochs: int) -> float:
    data = load_dataset(data_dir=folder, size=size, channels=channels)
    model = adapt_model(ModelConfig(), data.spec)
    result = train(RunConfig(model, TrainConfig(epochs=epochs, augment=False, device="cpu")), data)
    return result.images_per_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "photos", Path(tmp) / "cache"
        write_jpegs(folder, args.images)
        (first, cached), first_s = timed(lambda: load_image_folder(folder, 32, 3, "crop", cache))
        assert not cached
        (again, cached), cached_s = timed(lambda: load_image_folder(folder, 32, 3, "crop", cache))
        assert cached and np.array_equal(first.images, again.images)
        print(
            f"decode {args.images:,} 64×64 JPEGs → 32×32 RGB: first {first_s:.2f} s "
            f"({args.images / first_s:,.0f} images/s), from the cache {cached_s:.3f} s "
            f"(×{first_s / cached_s:,.0f} faster)"
        )
        rgb = speed(folder, 32, 3, args.epochs)
        grey = speed(folder, 28, 1, args.epochs)
    print(
        f"training the default network: 32×32 RGB {rgb:,.0f} images/s, 28×28 grey {grey:,.0f} images/s "
        f"(ratio RGB/grey {rgb / grey:.2f})"
    )
    ok = cached_s <= CACHED_TARGET_S
    print(f"cached load {cached_s:.3f} s vs target ≤ {CACHED_TARGET_S} s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
