"""The optimizer and learning-rate schedule of a ``TrainConfig``, from ``torch.optim``: the same lines the exported
training script (``cnn_core.teaching.codegen``) writes, so a learner reads what actually ran.

The schedule steps once per batch. One-cycle (``OneCycleLR`` with a quick 25 % warm-up, then a long anneal: what
makes few epochs enough) also cycles SGD's momentum, or Adam's beta1, between 0.95 and 0.85; below
``ONECYCLE_MIN_STEPS`` steps it cannot warm up and anneal (``OneCycleLR`` divides by zero at 4), so the rate
stays constant.
"""

from __future__ import annotations

import torch
from torch import nn, optim
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, OneCycleLR

from cnn_core.config import ONECYCLE_MIN_STEPS, ONECYCLE_PCT_START, TrainConfig


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> optim.Optimizer:
    """SGD (Nesterov when it has momentum), Adam (L2 weight decay) or AdamW (decoupled weight decay).

    ``fused``: one kernel for the whole update where torch has one for the device (CPU and CUDA), which is
    several times faster than the per-tensor loop for a network of many small tensors (``benchmarks/bench_recipes``).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    fused = device.type in ("cpu", "cuda")
    if cfg.optimizer == "sgd":
        return optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
            fused=fused,
        )
    kind = optim.AdamW if cfg.optimizer == "adamw" else optim.Adam
    return kind(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def make_schedule(optimizer: optim.Optimizer, cfg: TrainConfig, total_steps: int) -> LRScheduler:
    """The learning rate at each optimizer step: one-cycle, cosine annealing to zero, or constant."""
    if cfg.schedule == "onecycle" and total_steps >= ONECYCLE_MIN_STEPS:
        return OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps, pct_start=ONECYCLE_PCT_START)
    if cfg.schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    return LambdaLR(optimizer, lambda _: 1.0)
