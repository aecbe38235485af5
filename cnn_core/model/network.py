"""Build a PyTorch network from a ``ModelConfig``; LeNet-5 by default.

Layers are named children of one ``nn.Sequential`` (conv1, act1, pool1, ..., flatten, fc1,
act_fc1, fc2) so feature-map hooks, Captum's layer methods and checkpoint keys all use the
names of the layer table. Every activation is its own module (not a functional call) because
Guided Backprop and DeepLift replace or hook them.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.config import ModelConfig
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


class Conv2d(nn.Conv2d):
    """``nn.Conv2d``, computed as the matrix product it is where the kernel covers the whole unpadded input (one
    output pixel, like LeNet-5's third convolution: 16×5×5 in, 120 out). oneDNN's convolution kernels are slow
    at that shape: 2.7 ms forward and backward for a batch of 256 in bf16 on a 2-core CPU, against 0.6 ms for the
    product. The same sums, added in another order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._covers(x):
            return super().forward(x)
        n, out = x.shape[0], self.out_channels
        if x.is_contiguous():  # flatten (channel, row, column), the weight's own order
            flat, weight = x.reshape(n, -1), self.weight.reshape(out, -1)
        else:  # channels_last: (row, column, channel); views of both when the weight is channels_last too
            flat, weight = x.permute(0, 2, 3, 1).reshape(n, -1), self.weight.permute(0, 2, 3, 1).reshape(out, -1)
        return F.linear(flat, weight, self.bias).view(n, out, 1, 1)

    def _covers(self, x: torch.Tensor) -> bool:
        whole = x.dim() == 4 and tuple(x.shape[2:]) == tuple(self.kernel_size)
        plain = self.padding in ((0, 0), "valid") and self.dilation == (1, 1) and self.groups == 1
        return whole and plain


def _pool(pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``pool(x)``, with a faster way for 2×2 max pooling at stride 2 where no gradient is wanted (evaluation,
    predictions): PyTorch's CPU kernel always works out where each maximum was, for a backward pass that will not
    come, and it is slow on few channels: 1,000 images of 6×28×28 take 24 ms in NCHW and 14 ms in channels_last,
    against 5 and 3.5 ms as two element-wise maxima over views (``max_pool_2x2``), which give the same numbers bit
    for bit. The module stays a plain ``nn.MaxPool2d`` (Captum's DeepLift recognises pools by their exact type), and
    a pool with hooks is always called."""
    if torch.is_grad_enabled() or _hooked(pool):  # a training step's check ends here
        return pool(x)
    plain = (
        type(pool) is nn.MaxPool2d
        and pool.kernel_size in (2, (2, 2))
        and pool.stride in (2, (2, 2))
        and pool.padding in (0, (0, 0))
        and pool.dilation in (1, (1, 1))
        and not pool.return_indices
    )
    even = x.dim() == 4 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0 and x.device.type == "cpu"
    return max_pool_2x2(x) if plain and even else pool(x)


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """2×2 max pooling at stride 2 of an (N, C, H, W) tensor with even H and W, kept in its memory format."""
    n, c, h, w = x.shape
    if x.is_contiguous():  # NCHW: rows are w apart, columns are neighbours
        rows = x.view(n, c, h // 2, 2 * w)
        rows = torch.maximum(rows[..., :w], rows[..., w:]).view(n, c, h // 2, w // 2, 2)
        return torch.maximum(rows[..., 0], rows[..., 1])
    pixels = x.permute(0, 2, 3, 1).contiguous()  # channels_last: a view (a copy for any other layout)
    rows = pixels.view(n, h // 2, 2 * w * c)
    rows = torch.maximum(rows[..., : w * c], rows[..., w * c :]).view(n, h // 2, w // 2, 2 * c)
    return torch.maximum(rows[..., :c], rows[..., c:]).permute(0, 3, 1, 2)


class ConvNet(nn.Sequential):
    """A LeNet-style CNN: conv blocks, flatten, fully connected layers; outputs logits.

    Input: float images in [0, 1], shape (N, C, H, W). Softmax is applied by callers that want
    probabilities (``predict_proba``) because the loss works on logits.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        self.config = cfg
        layers: OrderedDict[str, nn.Module] = OrderedDict(normalize=Normalize(cfg.input_mean, cfg.input_std))
        channels = cfg.in_channels
        for i, block in enumerate(cfg.conv, start=1):
            layers[f"conv{i}"] = Conv2d(channels, block.out_channels, block.kernel_size, block.stride, block.padding)
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
        self.pool_first = {f"act{i}": f"pool{i}" for i in range(1, len(cfg.conv) + 1) if f"pool{i}" in layers}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layers in order, except that a max pool after a ReLU runs before it: ReLU commutes with a maximum,
        so the values, the winning pixel of each window and every gradient are the same, bit for bit, but the
        ReLU works on a quarter of the pixels (4 % of a LeNet-5 training step on a 2-core CPU, a fifth of an
        evaluation). Only ReLU: it creates ties only at 0, where no gradient passes anyway; a leaky ReLU's
        rounding can tie two negative values, and the pool may then pick the other one. A pass with hooks on
        the pair (feature maps, Guided Backprop, layer attributions) keeps the order of the layer table."""
        skip = None
        for name, module in self._modules.items():
            if name == skip:
                continue
            pool = self._modules.get(self.pool_first.get(name, ""))
            if _commutes(module, pool):
                x, skip = module(_pool(pool, x)), self.pool_first[name]
            else:
                x = _pool(module, x) if isinstance(module, nn.MaxPool2d) else module(x)
        return x

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax at the output, as in the article)."""
        return torch.softmax(self(x).float(), dim=1)


def _hooked(module: nn.Module) -> bool:
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return any(getattr(module, h, None) for h in hooks)


def _commutes(act: nn.Module, pool: nn.Module | None) -> bool:
    """Whether ``act`` then ``pool`` may run as ``pool`` then ``act`` with the same results and gradients."""
    return type(act) is nn.ReLU and isinstance(pool, nn.MaxPool2d) and not _hooked(act) and not _hooked(pool)


def build_model(cfg: ModelConfig | None = None, seed: int | None = None) -> ConvNet:
    """A freshly initialised network; with ``seed`` the initial weights are reproducible."""
    if seed is None:
        return ConvNet(cfg or ModelConfig())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ConvNet(cfg or ModelConfig())


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
