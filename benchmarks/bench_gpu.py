"""LeNet-5 on a CUDA GPU, measured in one run (it has never been measured on one before):

1. images/s and seconds per 60,000-image epoch, data resident on the device, channels_last, bf16 or fp16
   autocast (whatever the card has) against fp32, batch 512 / 1024 / 2048 (target: < 1 s per epoch);
2. one device read per log interval (log_every 20) against one per step (log_every 1);
3. the job manager's two workers per GPU: images/s of each of two runs at once against one alone;
4. the test accuracy of a full default run on the bundled 5k sample (official 10k test set where present);
5. the Fashion-MNIST race command (``benchmarks/fashion_race.cmd``), whole process, where Fashion-MNIST is.

Without a CUDA GPU it says so and exits with status 1, having measured nothing.

    python -m benchmarks.bench_gpu [--epochs 3] [--mnist-dir DIR] [--fashion-dir DIR]

``--mnist-dir`` is the 5k sample + official test folder and ``--fashion-dir`` Debian's Fashion-MNIST folder,
for a GPU machine where they are not at their usual places.
"""

import argparse
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.data import Dataset, load_dataset
from cnn_core.jobs import JobManager
from cnn_core.runs import RunStore
from cnn_core.training.loop import pick_precision, run_device_label, train

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT.parent / "shared" / "datasets" / "mnist-5k-official-test"  # the 5k sample + official test
BUNDLED_DIR = ROOT / "cnn_core" / "assets" / "mnist-5k"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
EPOCH_IMAGES = 60_000


def sixty_thousand_images(fashion_dir: Path) -> Dataset:
    """Fashion-MNIST's 60,000 training images where installed, else the bundled sample repeated to 60,000."""
    if fashion_dir.is_dir():
        data = load_dataset("mnist", data_dir=str(fashion_dir), val_fraction=0.0)
    else:
        data = load_dataset("mnist", data_dir=str(BUNDLED_DIR), val_fraction=0.0)
        reps = -(-EPOCH_IMAGES // len(data.train_y))
        data = replace(data, train_x=data.train_x.repeat(reps, 1, 1, 1), train_y=data.train_y.repeat(reps))
    return replace(data, train_x=data.train_x[:EPOCH_IMAGES], train_y=data.train_y[:EPOCH_IMAGES])


def seconds_per_epoch(data: Dataset, epochs: int, **train_kw) -> float:
    """Median seconds of the epochs after the first (which pays for kernel selection and warm-up)."""
    cfg = TrainConfig(epochs=epochs, device="cuda", val_fraction=0.0, augment=False, **train_kw)
    result = train(RunConfig(train=cfg), data)
    ends = [0.0] + [e.elapsed for e in result.history]
    return statistics.median([b - a for a, b in zip(ends, ends[1:], strict=False)][1:])


def speed(data: Dataset, epochs: int) -> None:
    auto = pick_precision("auto", torch.device("cuda"))
    half = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    print(f"== images/s, {len(data.train_y):,} images per epoch, data on the GPU, channels_last")
    for batch in (512, 1024, 2048):
        for precision in ("fp32", half):
            s = seconds_per_epoch(data, epochs, batch_size=batch, precision=precision)
            print(f"batch {batch:>5}, {precision}: {EPOCH_IMAGES / s:>10,.0f} images/s, {s:.2f} s per epoch")
    print(f"\n== device reads, batch 512, {auto}")
    for log_every in (1, 20):
        s = seconds_per_epoch(data, epochs, batch_size=512, precision=auto, log_every=log_every)
        print(f"log_every {log_every:>2}: {s:.2f} s per epoch ({EPOCH_IMAGES / s:,.0f} images/s)")


def two_workers(epochs: int) -> None:
    """Two runs through the job manager at once (its default on one GPU) against one run alone."""
    print("\n== job manager, default recipe on the bundled sample")
    run = RunConfig(train=TrainConfig(epochs=epochs, device="cuda"))  # the bundled sample: no --data-dir
    for count in (1, 2):
        manager = JobManager(RunStore(Path(tempfile.mkdtemp(prefix="bench-gpu-"))), max_concurrent=count)
        ids = [manager.submit(run) for _ in range(count)]
        rows = [manager.wait(run_id, timeout=900) for run_id in ids]
        manager.close()
        rates = ", ".join(f"{r.images_per_s:,.0f}" for r in rows)
        print(f"{count} worker(s) at once: {rates} images/s (total {sum(r.images_per_s for r in rows):,.0f})")


def default_accuracy(mnist_dir: Path) -> None:
    official = mnist_dir.is_dir()
    data = load_dataset("mnist", data_dir=str(mnist_dir if official else BUNDLED_DIR))
    where = "the official 10k test set" if official else "the bundled sample's test split"
    run = RunConfig(train=TrainConfig(device="cuda"))
    result = train(run, data)
    print(
        f"\n== default recipe ({run.train.epochs} epochs) on the bundled 5k sample: "
        f"{result.test_accuracy:.2%} on {where} in {result.seconds:.1f} s ({result.device})"
    )


def race(fashion_dir: Path) -> None:
    """The race command as written in fashion_race.cmd, its data folder set to ``fashion_dir``, timed whole."""
    from benchmarks.bench_recipes import race_words, timed

    words = race_words()
    words[words.index("--data-dir") + 1] = str(fashion_dir)
    result, seconds = timed(words)
    print(
        f"\n== Fashion-MNIST race command, whole process: {result['test_accuracy']:.2%} on {result['device']} "
        f"in {seconds:.1f} s ({' '.join(words[1:])})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3, help="epochs per measurement, at least 2 (the first warms up)")
    parser.add_argument("--mnist-dir", type=Path, default=MNIST_DIR, help="the 5k sample + official test set")
    parser.add_argument("--fashion-dir", type=Path, default=FASHION_DIR, help="Fashion-MNIST's IDX files")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is warm-up and is not counted")
    if not torch.cuda.is_available():
        sys.exit(
            "bench_gpu: no CUDA GPU here (torch.cuda.is_available() is False), so nothing was measured; "
            "run it on a machine with an NVIDIA GPU"
        )
    print(f"{run_device_label(TrainConfig(device='cuda'))}, torch {torch.__version__}\n")
    speed(sixty_thousand_images(args.fashion_dir), args.epochs)
    two_workers(args.epochs)
    default_accuracy(args.mnist_dir)
    if args.fashion_dir.is_dir():
        race(args.fashion_dir)


if __name__ == "__main__":
    main()
