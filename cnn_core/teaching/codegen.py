"""The code behind a run: one plain PyTorch + torchvision script for a ``RunConfig``, to carry on in a notebook.

The script is written in the shape of pytorch/examples' ``mnist/main.py`` (``Net``, ``train()``, ``test()``,
``main()``) and names its layers exactly as ``cnn_core.model.ConvNet`` does (conv1, act1, pool1, ...,
fc1, act_fc1, fc2), so a CNN Lab checkpoint loads into its ``Net`` with ``load_state_dict`` (``LOAD_LINES``).
It needs only torch and torchvision. ``export-code`` prints it from the command line.
"""

from __future__ import annotations

import argparse
import sys

from cnn_core.config import ONECYCLE_MIN_STEPS, ONECYCLE_PCT_START, ModelConfig, RunConfig, TrainConfig, load_config
from cnn_core.errors import CnnLabError, InvalidConfig
from cnn_core.shapes import layer_table

# The three lines that put a CNN Lab checkpoint into the exported Net (safetensors ships with CNN Lab).
LOAD_LINES = (
    'from safetensors.torch import load_file\nmodel = Net()\nmodel.load_state_dict(load_file("model.safetensors"))'
)

OPTIMIZER_LINES = {
    "sgd": "optim.SGD(model.parameters(), lr={lr!r}, momentum={momentum!r}, weight_decay={weight_decay!r}, "
    "nesterov={nesterov})",
    "adam": "optim.Adam(model.parameters(), lr={lr!r}, weight_decay={weight_decay!r})",
    "adamw": "optim.AdamW(model.parameters(), lr={lr!r}, weight_decay={weight_decay!r})",
}
SCHEDULE_LINES = {  # cnn_core.training.optimizers.make_schedule, stepped once per batch
    "onecycle": "optim.lr_scheduler.OneCycleLR(optimizer, max_lr={lr!r}, total_steps=total_steps, "
    f"pct_start={ONECYCLE_PCT_START}) if total_steps >= {ONECYCLE_MIN_STEPS} "
    "else optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)",
    "cosine": "optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)",
    "constant": "optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)",
}


def layer_lines(model: ModelConfig) -> list[str]:
    """``("conv1", nn.Conv2d(1, 6, kernel_size=5, stride=1, padding=2)),`` and so on, one per layer of ConvNet."""
    from cnn_core.model import ACTIVATION_MODULES  # here, not at the top: `cnn-lab summary` should not load torch

    act = ACTIVATION_MODULES[model.activation].__name__
    lines, channels = [f'("normalize", Normalize({model.input_mean!r}, {model.input_std!r})),'], model.in_channels
    for i, block in enumerate(model.conv, start=1):
        pad = repr(block.padding)
        conv = f"nn.Conv2d({channels}, {block.out_channels}, kernel_size={block.kernel_size}, stride={block.stride}"
        lines += [f'("conv{i}", {conv}, padding={pad})),', f'("act{i}", nn.{act}()),']
        if block.pool != "none":
            pool = "MaxPool2d" if block.pool == "max" else "AvgPool2d"
            lines.append(f'("pool{i}", nn.{pool}({block.pool_size}, stride={block.pool_stride})),')
        channels = block.out_channels
    lines.append('("flatten", nn.Flatten()),')
    features = layer_table(model)[-len(model.fc) - 2].output_shape[0]  # the flatten row, as ConvNet finds it
    for j, width in enumerate(model.fc, start=1):
        lines += [f'("fc{j}", nn.Linear({features}, {width})),', f'("act_fc{j}", nn.{act}()),']
        features = width
    lines.append(f'("fc{len(model.fc) + 1}", nn.Linear({features}, {model.num_classes})),')
    return lines


def data_lines(dataset: str, model: ModelConfig) -> list[str]:
    """How the script's ``main`` reads its images: from ``--data-dir`` in the format the dataset came in (IDX
    files for the MNIST family, class folders otherwise), else, for a torchvision dataset, its download."""
    from cnn_core.data import TORCHVISION_CLASS  # imports torch: only when a script is written

    if dataset in TORCHVISION_CLASS or dataset == "idx":
        name = TORCHVISION_CLASS.get(dataset, "MNIST")
        return [
            "if args.data_dir:  # your own copy of the IDX files: nothing is downloaded",
            "    train_set, test_set = idx_sets(args.data_dir)",
            "else:  # torchvision downloads it into --data-root",
            "    to_tensor = transforms.ToTensor()  # uint8 pixels -> floats in [0, 1]; Net normalises them itself",
            f"    train_set = datasets.{name}(args.data_root, train=True, download=True, transform=to_tensor)",
            f"    test_set = datasets.{name}(args.data_root, train=False, download=True, transform=to_tensor)",
        ]
    grey = "transforms.Grayscale(), " if model.in_channels == 1 else ""
    size = model.input_size
    return [
        "if not args.data_dir:",
        '    parser.error("--data-dir DIR is needed: the class folders this network learns from")',
        f"to_tensor = transforms.Compose([{grey}transforms.Resize({size}), transforms.CenterCrop({size}), "
        "transforms.ToTensor()])",
        "train_set, test_set = folder_sets(args.data_dir, to_tensor)",
    ]


def class_names(dataset: str) -> list[str] | None:
    """The dataset's classes in CNN Lab's order (so the script's label 3 is CNN Lab's label 3), when known."""
    from cnn_core.data import dataset_spec

    try:
        return list(dataset_spec(dataset).classes)
    except CnnLabError:
        return None


def training_script(run: RunConfig, dataset: str = "mnist", epochs: int | None = None) -> str:
    """The whole runnable script for ``run`` (``epochs`` overrides the config's number of epochs)."""
    train = run.train if epochs is None else TrainConfig.from_dict({**run.train.to_dict(), "epochs": epochs})
    indent = "\n" + " " * 12
    return SCRIPT.format(
        dataset=dataset,
        classes=repr(class_names(dataset)),
        layers=indent.join(layer_lines(run.model)),
        data="\n    ".join(data_lines(dataset, run.model)),
        optimizer=OPTIMIZER_LINES[train.optimizer].format(
            lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay, nesterov=train.momentum > 0
        ),
        schedule=SCHEDULE_LINES[train.schedule].format(lr=train.lr),
        augment={True: "True", False: "False", "auto": "len(train_set) < 20_000"}[train.augment],
        t=train,
    )


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``export-code`` on the CLI's subcommands."""
    p = subparsers.add_parser("export-code", help="print a plain PyTorch training script for a config")
    p.add_argument("--config", metavar="FILE", help="run config JSON; default LeNet-5 and the default recipe")
    p.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, kmnist, or a name for a class-folder set")
    p.add_argument("--epochs", type=int, help="epochs the script trains (default: the config's)")
    p.set_defaults(func=cmd_export_code)


def cmd_export_code(args: argparse.Namespace) -> int:
    run = load_config(args.config) if args.config else RunConfig()
    if args.epochs is not None and args.epochs < 1:
        raise InvalidConfig(f"--epochs: expected at least 1, got {args.epochs}")
    sys.stdout.write(training_script(run, args.dataset, args.epochs))
    return 0


SCRIPT = '''\
"""Train the CNN Lab network for {dataset} with plain PyTorch and torchvision (exported by CNN Lab).

Its layers carry CNN Lab's names, so a CNN Lab checkpoint loads into Net:

    from safetensors.torch import load_file
    model = Net()
    model.load_state_dict(load_file("model.safetensors"))

Run:  python this_script.py --epochs 2 --data-dir DIR   (your copy of the data; without it, a download)
"""

import argparse
import gzip
import os
import struct
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn, optim
from torchvision import datasets, transforms


class Normalize(nn.Module):
    """Maps [0, 1] pixels to the scale the weights expect (inside the model, so inputs stay plain pixels)."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x):
        return (x - self.mean) / self.std


class Net(nn.Sequential):
    def __init__(self):
        super().__init__(
            OrderedDict([
            {layers}
            ])
        )


CLASSES = {classes}  # CNN Lab's order of the classes (None: the folders' alphabetical order)
SPLIT_SEED = 0  # which images are held out for testing does not change with --seed


def read_idx(folder, stem):
    """One IDX file (MNIST's format, gzipped or not) from ``folder`` as a uint8 tensor; None when it is not there."""
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with (gzip.open if name.endswith(".gz") else open)(path, "rb") as fh:
                data = fh.read()
            dims = data[3]
            shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
            return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).reshape(shape)
    return None


def held_out(labels, fraction=0.2):
    """A mask of a fifth of each class, kept apart for testing when the data has no test split of its own."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test = torch.zeros(len(labels), dtype=torch.bool)
    for label in labels.unique():
        members = order[labels[order] == label]
        test[members[: max(1, round(len(members) * fraction))]] = True
    return test


def idx_sets(folder):
    """Train and test sets from IDX files: the t10k files test when the folder has them, else a held-out fifth."""
    x, y = read_idx(folder, "train-images-idx3-ubyte"), read_idx(folder, "train-labels-idx1-ubyte")
    if x is None or y is None:
        raise SystemExit(f"error: no train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] in {{folder}}")
    test_x, test_y = read_idx(folder, "t10k-images-idx3-ubyte"), read_idx(folder, "t10k-labels-idx1-ubyte")
    if test_x is None or test_y is None:  # never test on the training images
        test = held_out(y.long())
        x, y, test_x, test_y = x[~test], y[~test], x[test], y[test]
    tensors = torch.utils.data.TensorDataset
    return tensors(x.unsqueeze(1).float() / 255, y.long()), tensors(test_x.unsqueeze(1).float() / 255, test_y.long())


class ClassFolders(datasets.ImageFolder):
    """One subfolder of images per class, labelled in CNN Lab's order of the classes."""

    def find_classes(self, directory):
        found = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
        order = [c for c in CLASSES or [] if c in found] + [c for c in found if c not in (CLASSES or [])]
        return order, {{name: i for i, name in enumerate(order)}}


def folder_sets(folder, to_tensor):
    """Train and test sets from class folders: train/ and test/ when the folder has them, else a held-out fifth."""
    train, test = os.path.join(folder, "train"), os.path.join(folder, "test")
    if os.path.isdir(train) and os.path.isdir(test):
        return ClassFolders(train, transform=to_tensor), ClassFolders(test, transform=to_tensor)
    images = ClassFolders(folder, transform=to_tensor)
    test = held_out(torch.tensor(images.targets))
    subset = torch.utils.data.Subset
    return subset(images, (~test).nonzero().flatten().tolist()), subset(images, test.nonzero().flatten().tolist())


def augment(x, generator):
    """Random rotations (±10°), shifts (±10 %) and scaling (±10 %) of a whole batch, as CNN Lab trains."""
    n = x.shape[0]
    uniform = lambda limit: (torch.rand(n, generator=generator) * 2 - 1).to(x.device) * limit  # noqa: E731
    angle, scale = uniform(10.0) * torch.pi / 180, 1 + uniform(0.1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    rows = [torch.stack([cos, -sin, uniform(0.1) * 2], 1), torch.stack([sin, cos, uniform(0.1) * 2], 1)]
    theta = torch.stack(rows, 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def train(model, device, loader, optimizer, scheduler, epoch, generator, use_augment):
    model.train()
    total, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        if use_augment:
            x = augment(x, generator)
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing={t.label_smoothing!r})
        loss.backward()
        optimizer.step()
        scheduler.step()  # every schedule here is counted in batches
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    print(f"epoch {{epoch}}: train loss {{total / seen:.4f}}, train accuracy {{correct / seen:.2%}}")
    return total / seen


@torch.no_grad()
def test(model, device, loader):
    model.eval()
    correct, seen = 0, 0
    for x, y in loader:
        correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
        seen += len(y)
    print(f"test accuracy {{correct / seen:.2%}} on {{seen:,}} images")
    return correct / seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default={t.epochs})
    parser.add_argument("--batch-size", type=int, default={t.batch_size})
    parser.add_argument("--seed", type=int, default={t.seed})
    parser.add_argument("--data-dir", help="a folder with the data in the format it came in (no download)")
    parser.add_argument("--data-root", default="data", help="where torchvision downloads it without --data-dir")
    parser.add_argument("--save", default="model.pt", help="where to save the trained weights")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    {data}
    print(f"{{len(train_set):,}} training images, {{len(test_set):,}} test images")
    order = torch.Generator().manual_seed(args.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, generator=order)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=1000)

    model = Net().to(device)
    optimizer = {optimizer}
    total_steps = args.epochs * len(train_loader)
    scheduler = {schedule}
    use_augment = {augment}  # CNN Lab's "auto": augment small training sets only
    generator = torch.Generator().manual_seed(args.seed + 1)
    for epoch in range(1, args.epochs + 1):
        train(model, device, train_loader, optimizer, scheduler, epoch, generator, use_augment)
        test(model, device, test_loader)
    torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
'''
