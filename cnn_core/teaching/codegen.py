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
from cnn_core.errors import InvalidConfig
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
    """How the script reads its images: a torchvision dataset by name, else a folder of class folders."""
    from cnn_core.data import TORCHVISION_CLASS  # imports torch: only when a script is written

    if dataset in TORCHVISION_CLASS:
        name = TORCHVISION_CLASS[dataset]
        return [
            "to_tensor = transforms.ToTensor()  # uint8 pixels -> floats in [0, 1]; Net normalises them itself",
            f"train_set = datasets.{name}(args.data_root, train=True, download=True, transform=to_tensor)",
            f"test_set = datasets.{name}(args.data_root, train=False, download=True, transform=to_tensor)",
        ]
    grey = "transforms.Grayscale(), " if model.in_channels == 1 else ""
    size = model.input_size
    return [
        "# One subfolder per class under train/ and test/ (the layout CNN Lab's image-folder datasets use)",
        f"to_tensor = transforms.Compose([{grey}transforms.Resize({size}), transforms.CenterCrop({size}), "
        "transforms.ToTensor()])",
        'train_set = datasets.ImageFolder(os.path.join(args.data_root, "train"), transform=to_tensor)',
        'test_set = datasets.ImageFolder(os.path.join(args.data_root, "test"), transform=to_tensor)',
    ]


def training_script(run: RunConfig, dataset: str = "mnist", epochs: int | None = None) -> str:
    """The whole runnable script for ``run`` (``epochs`` overrides the config's number of epochs)."""
    train = run.train if epochs is None else TrainConfig.from_dict({**run.train.to_dict(), "epochs": epochs})
    indent = "\n" + " " * 12
    return SCRIPT.format(
        dataset=dataset,
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

Run:  python this_script.py --epochs 2 --data-root ./data
"""

import argparse
import os
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
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--save", default="model.pt", help="where to save the trained weights")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    {data}
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
