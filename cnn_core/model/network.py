"""Build a PyTorch network from a ``ModelConfig``; LeNet-5 by default.

Layers are named children of one ``nn.Sequential`` (conv1, act1, pool1, ..., flatten, fc1,
act_fc1, fc2) so feature-map hooks, Captum's layer methods and checkpoint keys all use the
names of the layer table. Every activation is its own module (not a functional call) because
Guided Backprop and DeepLift replace or hook them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import cast

import torch
from torch import nn

from cnn_core.config import ModelConfig
from cnn_core.model import fast as speed
from cnn_core.shapes import layer_table

ACTIVATION_MODULES = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


class Normalize(nn.Module):
    """Maps [0, 1] pixels to the standardised scale the weights were trained on."""

    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = float(mean), float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ConvNet(nn.Sequential):
    """A LeNet-style CNN: conv blocks, flatten, fully connected layers; outputs logits.

    Input: float images in [0, 1], shape (N, C, H, W). Softmax is applied by callers that want
    probabilities (``predict_proba``) because the loss works on logits. The pass is ``nn.Sequential``'s, layer
    by layer; with ``fast`` it takes the speed paths of ``cnn_core.model.fast`` (the same numbers, faster).
    """

    def __init__(self, cfg: ModelConfig, fast: bool = speed.FAST) -> None:
        self.config, self.fast = cfg, fast
        layers: OrderedDict[str, nn.Module] = OrderedDict(normalize=Normalize(cfg.input_mean, cfg.input_std))
        channels = cfg.in_channels
        for i, block in enumerate(cfg.conv, start=1):
            layers[f"conv{i}"] = nn.Conv2d(channels, block.out_channels, block.kernel_size, block.stride, block.padding)
            layers[f"act{i}"] = ACTIVATION_MODULES[cfg.activation]()
            if block.pool == "max":
                layers[f"pool{i}"] = nn.MaxPool2d(block.pool_size, block.pool_stride)
            elif block.pool == "avg":
                layers[f"pool{i}"] = nn.AvgPool2d(block.pool_size, block.pool_stride)
            channels = block.out_channels
        layers["flatten"] = nn.Flatten()
        features = layer_table(cfg)[-len(cfg.fc) - 2].output_shape[0]  # the flatten row
        for j, width in enumerate(cfg.fc, start=1):
            layers[f"fc{j}"] = nn.Linear(features, width)
            layers[f"act_fc{j}"] = ACTIVATION_MODULES[cfg.activation]()
            features = width
        layers[f"fc{len(cfg.fc) + 1}"] = nn.Linear(features, cfg.num_classes)
        super().__init__(layers)
        self.pool_after = {  # an activation -> the max pool that follows it
            f"act{i}": f"pool{i}" for i in range(1, len(cfg.conv) + 1) if f"pool{i}" in layers
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast:
            return speed.forward(self, x, self.pool_after)
        # Ignored: torch leaves nn.Sequential.forward unannotated
        return cast(torch.Tensor, super().forward(x))  # type: ignore[no-untyped-call]

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax at the output, as in the article)."""
        return torch.softmax(self(x).float(), dim=1)


def build_model(cfg: ModelConfig | None = None, seed: int | None = None, fast: bool = speed.FAST) -> ConvNet:
    """A freshly initialised network; with ``seed`` the initial weights are reproducible."""
    if seed is None:
        return ConvNet(cfg or ModelConfig(), fast)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ConvNet(cfg or ModelConfig(), fast)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
