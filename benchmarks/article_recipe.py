"""The article's recipe, as the baseline: LeNet-5, Adam lr 1e-4, batch 32, 10 epochs, and a per-sample
DataLoader that turns every digit into a PIL image and back into a tensor (what torchvision's MNIST
dataset + ``transforms.ToTensor()`` do). Prints one JSON line: test accuracy and seconds.

    python -m benchmarks.article_recipe --data-dir DIR [--epochs 10]
"""

import argparse
import json
import sys
import time

START = time.perf_counter()

import torch  # noqa: E402 - imported after START: the article's recipe is timed from process start
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import transforms  # noqa: E402

from cnn_core.config import MNIST_MEAN, MNIST_STD  # noqa: E402
from cnn_core.data import load_idx_folder  # noqa: E402
from cnn_core.model import Normalize  # noqa: E402


def article_lenet5() -> nn.Sequential:
    """The article's LeNet-5 (CNN Lab's default architecture, with its input scaling) in plain PyTorch modules.
    Not ``cnn_core.model.build_model``: CNN Lab's network has speed-ups of its own (C5 as a matrix product, pooling
    before the ReLU, a two-maxima pool without gradients), and the baseline must not share them. Built in the
    same order under the same seed, it starts from the same weights as ``build_model()``."""
    return nn.Sequential(
        Normalize(MNIST_MEAN, MNIST_STD),
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


class PILDigits(torch.utils.data.Dataset):
    """Per-sample decoding, as torchvision's MNIST does: array -> PIL image -> ToTensor()."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels
        self.to_tensor = transforms.ToTensor()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.to_tensor(Image.fromarray(self.images[i], mode="L")), int(self.labels[i])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    train_x, train_y, test_x, test_y = load_idx_folder(args.data_dir)
    torch.manual_seed(0)
    model = article_lenet5()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    train_loader = DataLoader(PILDigits(train_x, train_y), batch_size=32, shuffle=True)
    for epoch in range(args.epochs):
        model.train()
        for x, y in train_loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        print(f"epoch {epoch + 1}/{args.epochs} done at {time.perf_counter() - START:.0f} s", file=sys.stderr)
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(PILDigits(test_x, test_y), batch_size=1000):
            correct += (model(x).argmax(1) == y).sum().item()
    print(json.dumps({"test_accuracy": correct / len(test_y), "seconds": time.perf_counter() - START}))


if __name__ == "__main__":
    main()
