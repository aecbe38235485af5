"""The one training loop. It reports through events and checks a stop flag; it knows nothing
about progress bars, databases or Streamlit (the CLI, the run store and the job manager listen).

Reproducibility: the model's initial weights, the data order and the augmentation draws come
from three generators seeded by ``train.seed`` alone, so two runs that differ only in pooling
see the same digits in the same order — a fair max-vs-average comparison.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.config import AUTO_AUGMENT_BELOW, RunConfig, TrainConfig
from cnn_core.data import Dataset, augment, to_float
from cnn_core.errors import InvalidConfig
from cnn_core.model import ConvNet, build_model
from cnn_core.runs.run import Status

EXPLODED = 100  # a loss this many times its first value is not coming back
ONECYCLE_MIN_STEPS = 10  # fewer steps cannot warm up and anneal (OneCycleLR divides by zero at 4): constant lr
STUCK_AFTER_STEPS = 300  # steps after which accuracy at chance means the run is going nowhere


@dataclass
class Event:
    """What listeners hear: every ``log_every`` steps ("step"), every epoch ("epoch"), at the end ("end")."""

    kind: str
    epoch: int
    epochs: int
    step: int  # optimizer steps so far
    total_steps: int
    loss: float  # mean training loss since the last event of this kind
    accuracy: float
    lr: float
    images_per_s: float
    elapsed: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    status: Status | None = None  # "end" events: completed, stopped or diverged

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    status: Status  # completed, stopped or diverged
    model: ConvNet
    device: str
    seconds: float
    epochs_done: int
    history: list[Event] = field(default_factory=list)  # one "epoch" event per finished epoch
    test_loss: float | None = None
    test_accuracy: float | None = None
    val_accuracy: float | None = None
    images_per_s: float = 0.0
    error: str | None = None
    test_predictions: torch.Tensor | None = None  # predicted label per test image, for confusion matrices
    test_confidences: torch.Tensor | None = None  # how sure each of those predictions was


def pick_device(name: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU for "auto"; a forced device that is not here is an InvalidConfig."""
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if name in ("auto", "mps") and has_mps:
        return torch.device("mps")
    if name in ("cuda", "mps"):
        raise InvalidConfig(f"device {name!r} was asked for but this machine has none; use 'auto' or 'cpu'")
    return torch.device("cpu")


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


@torch.no_grad()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """Mean loss, accuracy, predicted labels and how sure each prediction is (the probability the model gives
    its own answer) over a uint8 image tensor (on the model's device).

    The model's train/eval mode is restored afterwards: a cached model shared by sessions is not changed."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, preds, sure = 0.0, [], []
    for start in range(0, len(images), batch_size):
        x = to_float(images[start : start + batch_size].to(device))
        y = labels[start : start + batch_size].to(device)
        logits = model(x).float()
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(1).cpu())
        sure.append(logits.softmax(1).amax(1).cpu())
    model.train(was_training)
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
    n = max(len(labels), 1)
    confidence = torch.cat(sure) if sure else torch.empty(0)
    return total_loss / n, (pred == labels.cpu()).float().sum().item() / n, pred, confidence


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.momentum > 0,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    if cfg.schedule == "onecycle" and total_steps >= ONECYCLE_MIN_STEPS:
        # pct_start 0.25: a quick warm-up, then a long anneal, which is what makes few epochs enough
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=0.25)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def train(
    run: RunConfig,
    data: Dataset,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_epoch_end: Callable[[ConvNet, Event], None] | None = None,
) -> TrainResult:
    """Train ``run.model`` on ``data`` with ``run.train``; returns the result, never raises on divergence."""
    cfg = run.train
    on_event = on_event or (lambda e: None)
    should_stop = should_stop or (lambda: False)
    device = pick_device(cfg.device)
    # channels_last: measured +10-35 % images/s for LeNet-5 on a 2-core CPU (oneDNN picks faster kernels)
    model = build_model(run.model, seed=cfg.seed).to(device, memory_format=torch.channels_last)
    order_gen = torch.Generator().manual_seed(cfg.seed)  # data order: CPU generator, same on every device
    aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
    xs, ys = data.train_x.to(device), data.train_y.to(device)
    steps_per_epoch = math.ceil(len(xs) / cfg.batch_size)
    stepper = _Stepper(model, cfg, device, steps_per_epoch * cfg.epochs)
    use_augment = cfg.augment is True or (cfg.augment == "auto" and len(xs) < AUTO_AUGMENT_BELOW)
    result = TrainResult(Status.COMPLETED, model, device_label(device), 0.0, 0)
    start, first_loss = time.perf_counter(), None
    chance = torch.bincount(data.train_y).max().item() / max(len(data.train_y), 1)  # always the commonest class

    for epoch in range(1, cfg.epochs + 1):
        perm = torch.randperm(len(xs), generator=order_gen).to(device)
        # Sums stay on the device and are read every log_every steps: each .item() is a device sync, which on a
        # GPU stalls the queue of kernels (and costs a little even on a CPU).
        totals, logged = torch.zeros(4, device=device), torch.zeros(4, device=device)
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x = to_float(xs[idx])
            x = augment(x, aug_gen) if use_augment else x
            totals += stepper.step(x.contiguous(memory_format=torch.channels_last), ys[idx])
            if stepper.steps % cfg.log_every == 0:
                window = _event("step", epoch, totals - logged, stepper, start)
                logged, first_loss = totals.clone(), first_loss or window.loss
                result.error = diverged(run, window, first_loss)
                if result.error:
                    result.status = Status.DIVERGED
                    break
                on_event(window)
            if should_stop():
                result.status = Status.STOPPED
                break
        if result.status != Status.COMPLETED:
            break
        val_loss, val_acc, _, _ = evaluate(model, data.val_x, data.val_y) if len(data.val_y) else (None,) * 4
        summary = _event("epoch", epoch, totals, stepper, start, val_loss=val_loss, val_accuracy=val_acc)
        result.error = diverged(run, summary, first_loss or summary.loss) or stuck(run, summary, chance)
        if result.error:
            result.status = Status.DIVERGED
            break
        result.history.append(summary)
        result.epochs_done, result.val_accuracy = epoch, val_acc
        on_event(summary)
        if on_epoch_end is not None:
            on_epoch_end(model, summary)
    result.seconds = time.perf_counter() - start
    result.images_per_s = stepper.images / max(result.seconds, 1e-9)
    if result.status != Status.DIVERGED:
        result.test_loss, result.test_accuracy, result.test_predictions, result.test_confidences = evaluate(
            model, data.test_x, data.test_y
        )
    model.eval()
    end = _event("end", result.epochs_done, torch.zeros(4), stepper, start, val_accuracy=result.val_accuracy)
    on_event(replace(end, status=result.status))
    return result


def _event(kind: str, epoch: int, sums: torch.Tensor, stepper: _Stepper, start: float, **extra) -> Event:
    """An event from ``sums`` = [loss summed over batches, correct, batches, images]; the one device sync."""
    loss_sum, correct, batches, images = sums.tolist()
    elapsed = time.perf_counter() - start
    return Event(
        kind=kind,
        epoch=epoch,
        epochs=stepper.cfg.epochs,
        step=stepper.steps,
        total_steps=stepper.total_steps,
        loss=loss_sum / max(batches, 1),
        accuracy=correct / max(images, 1),
        lr=stepper.lr,
        images_per_s=stepper.images / max(elapsed, 1e-9),
        elapsed=elapsed,
        **extra,
    )


def likely_cause(run: RunConfig, too_slow: bool = False) -> str:
    """The setting most likely to blame when training goes nowhere, checked in order of how sure we can be."""
    model, cfg = run.model, run.train
    if model.input_std < 0.05 or abs(model.input_mean) > 5:  # pixels are in [0, 1]: a std this small blows them up
        return (
            f"the input normalisation (mean {model.input_mean:g}, std {model.input_std:g}) is probably wrong: "
            "pixels are in [0, 1], MNIST's are mean 0.13, std 0.31"
        )
    if cfg.weight_decay >= 0.1:
        return f"the weight decay {cfg.weight_decay:g} is probably too strong (5e-4 is typical)"
    if too_slow and cfg.lr <= 1e-4:
        return f"the learning rate {cfg.lr:g} is probably too low"
    return f"the learning rate {cfg.lr:g} is probably too high"


def diverged(run: RunConfig, window: Event, first_loss: float) -> str | None:
    """Why a run's loss says it diverged (non-finite, or exploded past EXPLODED× its first value), or None."""
    where = f"at epoch {window.epoch}, step {window.step}"
    if not math.isfinite(window.loss):
        return f"loss became {window.loss} {where}: {likely_cause(run)}"
    if window.loss > EXPLODED * first_loss:
        return f"loss exploded from {first_loss:.3g} to {window.loss:.3g} {where}: {likely_cause(run)}"
    return None


def stuck(run: RunConfig, epoch: Event, chance: float) -> str | None:
    """After enough steps, a whole epoch's accuracy no better than always answering the commonest class
    (``chance``, within 2 points) means nothing is being learned."""
    if epoch.step < STUCK_AFTER_STEPS or epoch.accuracy > chance + 0.02:
        return None
    return (
        f"accuracy is stuck at chance ({epoch.accuracy:.1%}; always answering the commonest class gives "
        f"{chance:.1%}) after {epoch.step} steps: {likely_cause(run, too_slow=True)}"
    )


class _Stepper:
    """One optimizer step at a time: optimizer, schedule and (on CUDA) mixed precision."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, device: torch.device, total_steps: int) -> None:
        self.model, self.cfg, self.device, self.total_steps, self.steps = model, cfg, device, total_steps, 0
        self.images, self.one = 0, torch.ones((), device=device)
        self.opt = make_optimizer(model, cfg)
        self.sched = make_schedule(self.opt, cfg, total_steps)
        self.amp = cfg.amp and device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step; returns [loss, correct, 1 batch, images] as a tensor, without a device sync."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.label_smoothing)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        self.steps, self.images = self.steps + 1, self.images + len(y)
        correct = (logits.argmax(1) == y).sum()
        return torch.stack([loss.detach(), correct.float(), self.one, self.one * len(y)])

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]
