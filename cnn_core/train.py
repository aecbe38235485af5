"""The one training loop. It reports through events and checks a stop flag; it knows nothing
about progress bars, databases or Streamlit (the CLI, the run store and the job manager listen).

Reproducibility: the model's initial weights, the data order and the augmentation draws come
from three generators seeded by ``train.seed`` alone, so two runs that differ only in pooling
see the same digits in the same order — a fair max-vs-average comparison.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.config import AUTO_AUGMENT_BELOW, RunConfig, TrainConfig
from cnn_core.data import Dataset, augment, to_float
from cnn_core.errors import InvalidConfig
from cnn_core.model import ConvNet, build_model


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
    status: str | None = None  # "end" events: completed, stopped or diverged

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    status: str  # completed, stopped or diverged
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
) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy and predicted labels over a uint8 image tensor (on the model's device).

    The model's train/eval mode is restored afterwards: a cached model shared by sessions is not changed."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, preds = 0.0, []
    for start in range(0, len(images), batch_size):
        x = to_float(images[start : start + batch_size].to(device))
        y = labels[start : start + batch_size].to(device)
        logits = model(x).float()
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(1).cpu())
    model.train(was_training)
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
    n = max(len(labels), 1)
    return total_loss / n, (pred == labels.cpu()).float().sum().item() / n, pred


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
    if cfg.schedule == "onecycle":
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
    result = TrainResult("completed", model, device_label(device), 0.0, 0)
    clock = _Clock(cfg, stepper)
    for epoch in range(1, cfg.epochs + 1):
        perm = torch.randperm(len(xs), generator=order_gen).to(device)
        window, epoch_stats = _Window(), _Window()
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x, y = to_float(xs[idx]), ys[idx]
            x = augment(x, aug_gen) if use_augment else x
            loss, correct = stepper.step(x.contiguous(memory_format=torch.channels_last), y)
            if not math.isfinite(loss):
                result.status = "diverged"
                result.error = (
                    f"loss became {loss} at epoch {epoch}, step {stepper.steps + 1}: "
                    f"the learning rate {cfg.lr:g} is probably too high"
                )
                break
            clock.seen += len(y)
            window.add(loss, correct, len(y))
            epoch_stats.add(loss, correct, len(y))
            if stepper.steps % cfg.log_every == 0:
                on_event(clock.event("step", window, epoch))
                window = _Window()
            if should_stop():
                result.status = "stopped"
                break
        if result.status != "completed":
            break
        val_loss, val_acc, _ = evaluate(model, data.val_x, data.val_y) if len(data.val_y) else (None, None, None)
        event = clock.event("epoch", epoch_stats, epoch, val_loss, val_acc)
        result.history.append(event)
        result.epochs_done, result.val_accuracy = epoch, val_acc
        on_event(event)
        if on_epoch_end is not None:
            on_epoch_end(model, event)
    _finish(result, data, clock, on_event)
    return result


class _Stepper:
    """One optimizer step at a time: optimizer, schedule and (on CUDA) mixed precision."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, device: torch.device, total_steps: int) -> None:
        self.model, self.cfg, self.device, self.total_steps, self.steps = model, cfg, device, total_steps, 0
        self.opt = make_optimizer(model, cfg)
        self.sched = make_schedule(self.opt, cfg, total_steps)
        self.amp = cfg.amp and device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        """Loss and correct predictions of the batch; a non-finite loss is returned without stepping."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.label_smoothing)
        value = loss.item()
        if math.isfinite(value):
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            self.sched.step()
            self.steps += 1
        return value, int((logits.argmax(1) == y).sum().item())

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]


class _Clock:
    """Elapsed time and images seen, turned into events."""

    def __init__(self, cfg: TrainConfig, stepper: _Stepper) -> None:
        self.cfg, self.stepper, self.seen, self.start = cfg, stepper, 0, time.perf_counter()

    def event(
        self, kind: str, w: _Window, epoch: int, val_loss: float | None = None, val_accuracy: float | None = None
    ) -> Event:
        elapsed = time.perf_counter() - self.start
        return Event(
            kind,
            epoch,
            self.cfg.epochs,
            self.stepper.steps,
            self.stepper.total_steps,
            w.loss / max(w.batches, 1),
            w.correct / max(w.count, 1),
            self.stepper.lr,
            self.seen / max(elapsed, 1e-9),
            elapsed,
            val_loss,
            val_accuracy,
        )


def _finish(result: TrainResult, data: Dataset, clock: _Clock, on_event: Callable[[Event], None]) -> None:
    result.seconds = time.perf_counter() - clock.start
    result.images_per_s = clock.seen / max(result.seconds, 1e-9)
    if result.status != "diverged":
        result.test_loss, result.test_accuracy, result.test_predictions = evaluate(
            result.model, data.test_x, data.test_y
        )
    result.model.eval()
    end = clock.event("end", _Window(), result.epochs_done, None, result.val_accuracy)
    end.status = result.status
    on_event(end)


class _Window:
    """Running loss/accuracy sums between two events."""

    def __init__(self) -> None:
        self.loss, self.correct, self.count, self.batches = 0.0, 0, 0, 0

    def add(self, loss: float, correct: int, count: int) -> None:
        self.loss, self.correct = self.loss + loss, self.correct + correct
        self.count, self.batches = self.count + count, self.batches + 1
