"""SGD, Adam and AdamW with their learning-rate schedules (one-cycle, cosine, constant), without ``torch.optim``.

Why not ``torch.optim``: building any of its optimizers imports ``torch._dynamo`` (every ``Optimizer`` method is
wrapped in ``torch._disable_dynamo``, which imports it on first call). That import takes 0.9-1.8 s on a 2-core
CPU, as long as ``import torch`` itself: about a seventh of a whole two-epoch Fashion-MNIST training process, and
paid again by every run the app starts. The update rules here are torch's own, computed with the same multi-tensor
(``_foreach``) kernels as ``torch.optim``'s foreach implementation, and the schedules are
``OneCycleLR(max_lr, total_steps, pct_start=0.25)`` (which also cycles momentum, or Adam's beta1, between 0.95
and 0.85), ``CosineAnnealingLR(T_max=total_steps)`` and a constant rate; ``tests/core/test_optim.py`` checks
every pairing against ``torch.optim`` step by step. The exported training script (``codegen``) still uses
``torch.optim``.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

ONECYCLE_MIN_STEPS = 10  # fewer steps cannot warm up and anneal (OneCycleLR divides by zero at 4): constant lr
ONECYCLE_PCT_START = 0.25  # a quick warm-up, then a long anneal, which is what makes few epochs enough
ONECYCLE_MOMENTUM = (0.95, 0.85)  # OneCycleLR's max_momentum and base_momentum
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8

Schedule = Callable[[int], "tuple[float, float | None]"]  # step -> (lr, momentum or None to leave it)


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def schedule(kind: str, lr: float, total_steps: int) -> Schedule:
    """The learning rate (and momentum, for one-cycle) to use at each optimizer step, counted from 0."""
    if kind == "onecycle" and total_steps >= ONECYCLE_MIN_STEPS:
        start, low = lr / 25.0, lr / 25.0 / 1e4  # OneCycleLR's div_factor and final_div_factor
        warm_end, last = float(ONECYCLE_PCT_START * total_steps) - 1, total_steps - 1
        high_m, low_m = ONECYCLE_MOMENTUM

        def onecycle(step: int) -> tuple[float, float | None]:
            if step <= warm_end:
                pct = step / warm_end
                return _cos(start, lr, pct), _cos(high_m, low_m, pct)
            pct = (step - warm_end) / (last - warm_end)
            return _cos(lr, low, pct), _cos(low_m, high_m, pct)

        return onecycle
    if kind == "cosine":
        return lambda step: (lr * (1 + math.cos(math.pi * step / max(total_steps, 1))) / 2, None)
    return lambda step: (lr, None)


class Optimizer:
    """One of "sgd" (momentum; Nesterov when momentum > 0), "adam" (L2 weight decay) or "adamw" (decoupled weight
    decay) over ``params``, following ``sched``.

    As with a ``torch.optim`` optimizer and its scheduler, ``step()`` updates the weights and ``advance()`` moves
    the schedule on; a training loop calls both once per batch, so a step that ``torch.amp.GradScaler`` skips
    (inf or NaN gradients in fp16) still moves the schedule. ``param_groups[0]`` holds the rate and momentum the
    next step will use, which is what ``GradScaler`` unscales and steps through."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        kind: str,
        sched: Schedule,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
    ) -> None:
        if kind not in ("sgd", "adam", "adamw"):
            raise ValueError(f"unknown optimizer {kind!r}: use sgd, adam or adamw")
        self.kind, self.sched, self.weight_decay, self.steps = kind, sched, weight_decay, 0
        self.params = [p for p in params if p.requires_grad]
        self.nesterov = kind == "sgd" and momentum > 0  # fixed by the config, as torch.optim.SGD's flag is
        beta1 = momentum if kind == "sgd" else ADAM_BETAS[0]
        self.param_groups = [{"params": self.params, "lr": 0.0, "momentum": beta1}]  # Adam: beta1 is "momentum"
        self.state: dict[str, list[torch.Tensor]] = {}  # SGD's momentum buffers, Adam's two moments
        self.updates = [0] * len(self.params)  # Adam's bias correction counts each parameter's own updates
        self._set(0)

    def _set(self, step: int) -> None:
        lr, momentum = self.sched(step)
        self.param_groups[0]["lr"] = lr
        if momentum is not None:
            self.param_groups[0]["momentum"] = momentum

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient, at the schedule's current rate."""
        have = [i for i, p in enumerate(self.params) if p.grad is not None]
        if have:
            params = [self.params[i] for i in have]
            group = self.param_groups[0]
            update = self._sgd if self.kind == "sgd" else self._adam
            update(params, [p.grad for p in params], have, group["lr"], group["momentum"])

    def advance(self) -> None:
        """The schedule's next step (``LRScheduler.step()``)."""
        self.steps += 1
        self._set(self.steps)

    def _buffers(self, name: str, have: list[int]) -> list[torch.Tensor]:
        """The state tensors ``name`` of the parameters in ``have`` (zeros the first time)."""
        if name not in self.state:
            self.state[name] = [torch.zeros_like(p) for p in self.params]
        return [self.state[name][i] for i in have]

    def _sgd(self, params: list, grads: list, have: list[int], lr: float, momentum: float) -> None:
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if momentum:
            # torch.optim.SGD starts each buffer at the first gradient: 0 * momentum + gradient is exactly that
            buffers = self._buffers("momentum", have)
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_add_(buffers, grads)
            grads = torch._foreach_add(grads, buffers, alpha=momentum) if self.nesterov else buffers
        torch._foreach_add_(params, grads, alpha=-lr)

    def _adam(self, params: list, grads: list, have: list[int], lr: float, beta1: float) -> None:
        beta2 = ADAM_BETAS[1]
        for i in have:
            self.updates[i] += 1
        counts = [self.updates[i] for i in have]
        exp_avgs = self._buffers("exp_avg", have)
        exp_avg_sqs = self._buffers("exp_avg_sq", have)
        if self.weight_decay and self.kind == "adamw":
            torch._foreach_mul_(params, 1 - lr * self.weight_decay)
        elif self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, [math.sqrt(1 - beta2**t) for t in counts])
        torch._foreach_add_(denom, ADAM_EPS)
        torch._foreach_addcdiv_(params, exp_avgs, denom, [-lr / (1 - beta1**t) for t in counts])
