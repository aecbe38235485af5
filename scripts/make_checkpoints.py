"""Train the bundled checkpoints: LeNet-5 with max and with average pooling on the bundled MNIST sample.

``python scripts/make_checkpoints.py`` writes ``checkpoints/<name>.safetensors`` + ``.json`` with the
accuracy on the sample's held-out test digits and, when ``../shared`` has it, on the official
10,000-digit MNIST test set.
"""

import json
from dataclasses import replace
from pathlib import Path

from cnn_core.config import RunConfig
from cnn_core.data import as_images, as_labels, load_dataset, load_idx_folder
from cnn_core.model.checkpoint import save_checkpoint
from cnn_core.settings import checkpoints_dir
from cnn_core.training.loop import evaluate, train

ROOT = Path(__file__).resolve().parents[1]

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
            _, acc, _, _ = evaluate(result.model, as_images(test_x), as_labels(test_y))
            metrics["official_test_accuracy"] = acc
        path = save_checkpoint(checkpoints_dir() / f"lenet5-mnist-{pool}.safetensors", result.model, run.model, metrics)
        print(f"{path.name}: test {result.test_accuracy:.4f}, official {metrics.get('official_test_accuracy')}")
        digest = json.loads(path.with_suffix(".json").read_text())["weights_sha256"]
        print(f'    "lenet5-mnist-{pool}": "{digest}",  # for BUNDLED_SHA256 in cnn_core/checkpoint.py')


if __name__ == "__main__":
    main()
