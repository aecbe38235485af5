"""Train the bundled checkpoints: LeNet-5 with max and with average pooling on the bundled MNIST sample.

``python scripts/make_checkpoints.py`` writes ``checkpoints/<name>.safetensors`` + ``.json`` with the
accuracy on the sample's held-out test digits and, when ``../shared`` has it, on the official
10,000-digit MNIST test set.
"""

import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnn_core.checkpoint import CHECKPOINT_DIR, save_checkpoint  # noqa: E402
from cnn_core.config import RunConfig  # noqa: E402
from cnn_core.data import _as_images, _as_labels, load_dataset, load_idx_folder  # noqa: E402
from cnn_core.train import evaluate, train  # noqa: E402

OFFICIAL = ROOT.parent / "shared" / "datasets" / "mnist-5k-official-test"


def main() -> None:
    data = load_dataset("mnist", data_dir=None, download=False)
    base = RunConfig()
    for pool in ("max", "avg"):
        run = replace(base, model=base.model.with_pooling(pool))
        result = train(run, data)
        metrics = {
            "dataset": "mnist (bundled 5k sample)",
            "test_accuracy": result.test_accuracy,
            "val_accuracy": result.val_accuracy,
            "epochs": result.epochs_done,
            "train": run.train.to_dict(),
            "test_set": f"{len(data.test_y)} held-out digits of the sample",
        }
        if OFFICIAL.is_dir():
            _, _, test_x, test_y = load_idx_folder(OFFICIAL)
            _, acc, _ = evaluate(result.model, _as_images(test_x), _as_labels(test_y))
            metrics["official_test_accuracy"] = acc
        path = save_checkpoint(CHECKPOINT_DIR / f"lenet5-mnist-{pool}.safetensors", result.model, run.model, metrics)
        print(f"{path.name}: test {result.test_accuracy:.4f}, official {metrics.get('official_test_accuracy')}")


if __name__ == "__main__":
    main()
