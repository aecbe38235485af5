"""The network's speed paths, all in one place and behind one switch (``ConvNet(cfg, fast=...)``; the default is
``FAST``, which ``CNN_LAB_FAST=0`` turns off). Each gives the plain ``nn.Sequential`` pass's numbers: the same
bits, or the same sums added in another order; ``tests/core/test_model.py`` holds both paths together (outputs,
gradients, hooks, Captum) and ``benchmarks/bench_recipes.py`` measures what they are worth.

- **Pool before the ReLU.** ReLU commutes with a maximum, so ``maxpool(relu(x)) == relu(maxpool(x))`` with the same
  winning pixel and gradients, and the ReLU works on a quarter of the pixels. Only ReLU: a leaky ReLU's rounding
  can tie two negative values and the pool may then pick the other one. A pair with hooks (feature maps, Guided
  Backprop, layer attributions) keeps the layer table's order.
- **2×2 max pooling without a gradient as two element-wise maxima.** PyTorch's CPU kernel always works out where
  each maximum was, for a backward pass that will not come, and is slow on few channels; the maxima over views
  give the same bits.
- **A convolution whose kernel covers its whole unpadded input is a matrix product** (LeNet-5's third
  convolution, 16×5×5 in, one output pixel): oneDNN's convolution kernels are slow at that shape.

The modules themselves stay stock (``nn.Conv2d``, ``nn.MaxPool2d``: Captum's DeepLift recognises pools by their
exact type); only the order and the kernels of a pass change.
"""

from __future__ import annotations

import os
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

FAST = os.environ.get("CNN_LAB_FAST", "1") != "0"


def forward(net: nn.Sequential, x: torch.Tensor, pool_after: dict[str, str]) -> torch.Tensor:
    """``net``'s layers in order, with the speed paths above; ``pool_after`` maps an activation to the max pool
    that follows it."""
    skip = None
    for name, module in net.named_children():
        if name == skip:
            continue
        pool = net._modules.get(pool_after.get(name, ""))
        if commutes(module, pool):
            assert pool is not None
            x, skip = module(pool_2x2(pool, x)), pool_after[name]
        elif isinstance(module, nn.MaxPool2d):
            x = pool_2x2(module, x)
        elif isinstance(module, nn.Conv2d) and covers(module, x) and not hooked(module):
            x = conv_as_matmul(module, x)
        else:
            x = module(x)
    return x


def hooked(module: nn.Module) -> bool:
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return any(getattr(module, h, None) for h in hooks)


def commutes(act: nn.Module, pool: nn.Module | None) -> bool:
    """Whether ``act`` then ``pool`` may run as ``pool`` then ``act`` with the same results and gradients."""
    return type(act) is nn.ReLU and isinstance(pool, nn.MaxPool2d) and not hooked(act) and not hooked(pool)


def pool_2x2(pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``pool(x)``, as two element-wise maxima for a plain 2×2 max pool at stride 2 where no gradient is wanted."""
    if torch.is_grad_enabled() or hooked(pool):  # a training step's check ends here
        return cast(torch.Tensor, pool(x))
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


def covers(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether ``conv``'s kernel covers the whole unpadded input: one output pixel, a matrix product."""
    whole = x.dim() == 4 and tuple(x.shape[2:]) == tuple(conv.kernel_size)
    plain = conv.padding in ((0, 0), "valid") and conv.dilation == (1, 1) and conv.groups == 1
    return whole and plain


def conv_as_matmul(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a kernel that ``covers`` ``x``, as ``F.linear`` over flattened pixels and weights."""
    n, out = x.shape[0], conv.out_channels
    if x.is_contiguous():  # flatten (channel, row, column), the weight's own order
        flat, weight = x.reshape(n, -1), conv.weight.reshape(out, -1)
    else:  # channels_last: (row, column, channel); views of both when the weight is channels_last too
        flat, weight = x.permute(0, 2, 3, 1).reshape(n, -1), conv.weight.permute(0, 2, 3, 1).reshape(out, -1)
    return F.linear(flat, weight, conv.bias).view(n, out, 1, 1)
