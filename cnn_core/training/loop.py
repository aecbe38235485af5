"""The one training loop. It reports through events and checks a stop flag; it knows nothing
about progress bars, databases or Streamlit (the CLI, the run store and the job manager listen).

Reproducibility: the model's initial weights, the data order and the augmentation draws come
from three generators seeded by ``train.seed`` alone, so two runs that differ only in pooling
see the same digits in the same order — a fair max-vs-average comparison. A run is reproducible for a
fixed seed and precision on the same machine (bf16 rounds differently from fp32, so the two differ).

Precision: the forward and backward passes run under autocast in bf16 on a CPU that computes bf16
natively (``pick_precision``; on a GPU "auto" is fp32, which is faster for networks this small); the
weights, the optimizer, the loss and every metric stay in fp32, and evaluation runs in fp32, the way a saved
checkpoint is used afterwards.

Resuming: after every epoch the loop hands its listener a ``TrainState`` (``training/state.py``), and ``train``
given one goes on from the epoch after it through the same loop. On the same machine and precision a resumed
run ends with the same weights, bit for bit, as one that never stopped: the order and augmentation generators,
the optimizer's moments and the schedule are restored exactly, and nothing else in a step is random.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.config import AUTO_AUGMENT_BELOW, RunConfig, TrainConfig
from cnn_core.data import Dataset, augment, to_float
from cnn_core.errors import BadCheckpoint, InvalidConfig
from cnn_core.model import ConvNet, build_model
from cnn_core.training.state import TrainState
from cnn_core.training.stepper import Stepper

EXPLODED = 100  # a loss this many times its first value is not coming back
STUCK_AFTER_STEPS = 300  # steps after which accuracy at chance means the run is going nowhere
# A short run (the Train page's default is ~290 steps on the bundled sample) is judged by epochs instead: two
# epochs in a row at chance, on the training and the validation images, after at least this many steps.
STUCK_MIN_STEPS = 40


class Outcome(StrEnum):
    """How the loop ended; the run store's ``Status`` has the same values (and more: queued, failed, …)."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    DIVERGED = "diverged"


@dataclass
class Event:
    """What listeners hear: after the first step and every ``log_every`` steps ("step"), every epoch ("epoch"), at
    the end ("end")."""

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
    status: Outcome | None = None  # "end" events: completed, stopped or diverged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    status: Outcome  # completed, stopped or diverged
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


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX on x86, BF16 on Arm). Only then is bf16
    autocast faster: oneDNN also runs bf16 on plain AVX-512 (``torch.ops.mkldnn._is_mkldnn_bf16_supported``
    says yes there), but by converting to fp32, which is slower than fp32 itself."""
    try:
        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # Arm: checks the BF16 extension
    except (AttributeError, RuntimeError):  # private helpers: a torch without them gets fp32
        return False


def pick_precision(name: str, device: torch.device, native_bf16: bool | None = None) -> str:
    """fp32, bf16 or fp16 for ``train.precision`` on ``device``: "auto" is bf16 on a CPU that computes it
    natively (``native_bf16``, detected when None) and fp32 elsewhere, a CUDA GPU included: this app's networks
    are so small that a GPU step is bound by kernel launches, not arithmetic, and autocast's casts only add
    launches (measured on an H200, LeNet-5 at batch 512-2048: fp32 2-18 % more images/s than bf16). A forced
    precision the device lacks is an InvalidConfig, never a silent fallback."""
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False) if native_bf16 is None else native_bf16
        auto = "fp32"
    elif device.type == "cpu":
        bf16 = cpu_has_bf16() if native_bf16 is None else native_bf16
        auto = "bf16" if bf16 else "fp32"
    else:  # MPS: autocast there is partial; fp32 is the safe choice
        bf16, auto = False, "fp32"
    if name in ("auto", "fp32"):
        return auto if name == "auto" else name
    if name == "fp16" and device.type != "cuda":
        raise InvalidConfig(f"train.precision: fp16 runs on CUDA GPUs only, not on {device.type}; use 'auto' or 'fp32'")
    if name == "bf16" and not bf16:
        need = "AVX-512 BF16, AMX or Arm BF16" if device.type == "cpu" else "an Ampere or newer GPU"
        raise InvalidConfig(
            f"train.precision: bf16 was asked for but this {device.type} does not compute bf16 natively "
            f"(it needs {need}); use 'auto' or 'fp32'"
        )
    return name


def device_label(device: torch.device, precision: str | None = None) -> str:
    """What a run shows as its device: "cpu", "cuda (NVIDIA H100 …)", with " · bf16" when a precision is given."""
    name = f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type
    return f"{name} · {precision}" if precision else name


def run_device_label(cfg: TrainConfig) -> str:
    """The label of the device and precision ``cfg`` trains on here (an InvalidConfig if either is missing)."""
    device = pick_device(cfg.device)
    return device_label(device, pick_precision(cfg.precision, device))


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


def train(
    run: RunConfig,
    data: Dataset,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_epoch_end: Callable[[ConvNet, Event, TrainState], None] | None = None,
    resume: TrainState | None = None,
) -> TrainResult:
    """Train ``run.model`` on ``data`` with ``run.train``; returns the result, never raises on divergence.

    ``on_epoch_end`` hears each finished epoch with the state to save for going on after it; ``resume`` is such
    a state: training goes on from the epoch after it (a state that does not fit is a ``BadCheckpoint``)."""
    cfg = run.train
    on_event = on_event or (lambda e: None)
    should_stop = should_stop or (lambda: False)
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.precision, device)
    # channels_last: oneDNN picks faster kernels for LeNet-sized convolutions (benchmarks/bench_recipes.py).
    # Ignored below: torch's Module.to overloads omit device and memory_format together, which it accepts
    model = build_model(run.model, seed=cfg.seed)
    model = model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    order_gen = torch.Generator().manual_seed(cfg.seed)  # data order: CPU generator, same on every device
    aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
    xs, ys = data.train_x.to(device), data.train_y.to(device)
    steps_per_epoch = math.ceil(len(xs) / cfg.batch_size)
    stepper = Stepper(model, cfg, device, precision, steps_per_epoch * cfg.epochs)
    use_augment = cfg.augment is True or (cfg.augment == "auto" and len(xs) < AUTO_AUGMENT_BELOW)
    result = TrainResult(Outcome.COMPLETED, model, device_label(device, precision), 0.0, 0)
    start, first_loss = time.perf_counter(), None
    chance = torch.bincount(data.train_y).max().item() / max(len(data.train_y), 1)  # always the commonest class
    generators = {"order": order_gen, "augment": aug_gen}
    if resume is not None:
        stepper.load(resume, generators)
        first_loss, result.epochs_done, result.history = resume.first_loss, resume.epoch, _events(resume)
        result.val_accuracy = result.history[-1].val_accuracy if result.history else None
        start -= resume.elapsed  # a resumed run's clock goes on from where it stopped

    for epoch in range(result.epochs_done + 1, cfg.epochs + 1):
        perm = torch.randperm(len(xs), generator=order_gen).to(device)
        # Sums stay on the device and are read every log_every steps: each .item() is a device sync, which on a
        # GPU stalls the queue of kernels (and costs a little even on a CPU).
        totals, logged = torch.zeros(4, device=device), torch.zeros(4, device=device)
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x = to_float(xs[idx])
            x = augment(x, aug_gen) if use_augment else x
            totals += stepper.step(x.contiguous(memory_format=torch.channels_last), ys[idx])
            # The first step reports at once: a new run's curve starts one step after launch, not log_every steps.
            if stepper.steps % cfg.log_every == 0 or stepper.steps == 1:
                window = _event("step", epoch, totals - logged, stepper, start)
                logged, first_loss = totals.clone(), first_loss or window.loss
                result.error = diverged(run, window, first_loss)
                if result.error:
                    result.status = Outcome.DIVERGED
                    break
                on_event(window)
            if should_stop():
                result.status = Outcome.STOPPED
                break
        if result.status != Outcome.COMPLETED:
            break
        val_loss, val_acc, _, _ = evaluate(model, data.val_x, data.val_y) if len(data.val_y) else (None,) * 4
        summary = _event("epoch", epoch, totals, stepper, start, val_loss=val_loss, val_accuracy=val_acc)
        previous = result.history[-1] if result.history else None
        result.error = diverged(run, summary, first_loss or summary.loss) or stuck(run, summary, chance, previous)
        if result.error:
            result.status = Outcome.DIVERGED
            break
        result.history.append(summary)
        result.epochs_done, result.val_accuracy = epoch, val_acc
        on_event(summary)
        if on_epoch_end is not None:
            history = [e.to_dict() for e in result.history]
            elapsed = time.perf_counter() - start
            on_epoch_end(model, summary, stepper.state(epoch, generators, history, first_loss, elapsed))
    result.seconds = time.perf_counter() - start
    result.images_per_s = stepper.images / max(result.seconds, 1e-9)
    if result.status != Outcome.DIVERGED:
        result.test_loss, result.test_accuracy, result.test_predictions, result.test_confidences = evaluate(
            model, data.test_x, data.test_y
        )
    model.eval()
    end = _event("end", result.epochs_done, torch.zeros(4), stepper, start, val_accuracy=result.val_accuracy)
    on_event(replace(end, status=result.status))
    return result


def _events(state: TrainState) -> list[Event]:
    """The epoch events a saved state recorded, as the loop made them."""
    try:
        return [Event(**{**e, "status": None}) for e in state.history]
    except TypeError as err:
        raise BadCheckpoint(f"the saved training state (epoch {state.epoch}) has a damaged history: {err}") from None


def _event(kind: str, epoch: int, sums: torch.Tensor, stepper: Stepper, start: float, **extra: Any) -> Event:
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


def stuck(run: RunConfig, epoch: Event, chance: float, previous: Event | None = None) -> str | None:
    """After enough steps, a whole epoch's accuracy no better than always answering the commonest class
    (``chance``, within 2 points) means nothing is being learned; in a short run, two such epochs in a row
    (validation at chance too) mean the same."""
    if epoch.accuracy > chance + 0.02:
        return None
    at_chance = [e for e in (previous, epoch) if e is not None and _at_chance(e, chance)]
    if epoch.step < STUCK_AFTER_STEPS and (len(at_chance) < 2 or epoch.step < STUCK_MIN_STEPS):
        return None
    return (
        f"accuracy is stuck at chance ({epoch.accuracy:.1%}; always answering the commonest class gives "
        f"{chance:.1%}) after {epoch.step} steps: {likely_cause(run, too_slow=True)}"
    )


def _at_chance(epoch: Event, chance: float) -> bool:
    return all(acc is None or acc <= chance + 0.02 for acc in (epoch.accuracy, epoch.val_accuracy))
