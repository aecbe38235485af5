"""One optimizer step at a time for the training loop: the optimizer, the schedule and mixed precision, and
the state that going on after an epoch needs (``TrainState``: saved after an epoch, put back to resume)."""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.config import TrainConfig
from cnn_core.errors import BadCheckpoint
from cnn_core.training.optimizers import make_optimizer, make_schedule
from cnn_core.training.state import TrainState

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # fp32: no autocast


class Stepper:
    """One optimizer step at a time: optimizer, schedule and mixed precision (autocast in ``precision``)."""

    def __init__(
        self, model: nn.Module, cfg: TrainConfig, device: torch.device, precision: str, total_steps: int
    ) -> None:
        self.model, self.cfg, self.device, self.total_steps = model, cfg, device, total_steps
        self.images, self.one = 0, torch.ones((), device=device)
        self.opt = make_optimizer(model, cfg, device)
        self.schedule = make_schedule(self.opt, cfg, total_steps)
        self.autocast = precision in AUTOCAST_DTYPES
        self.dtype = AUTOCAST_DTYPES.get(precision, torch.bfloat16)  # ignored when autocast is off
        # fp16 gradients underflow without loss scaling; the scaler reads an inf check back every step (a sync),
        # which is one more reason bf16 (no scaler) is preferred wherever it exists
        self.scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step; returns [loss, correct, 1 batch, images] as a tensor, without a device sync."""
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.autocast):
            logits = self.model(x).float()  # the loss and the accuracy in fp32, whatever the layers ran in
            loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        self.scaler.step(self.opt)  # fp16: skipped where the gradients overflowed
        self.scaler.update()
        self.schedule.step()  # every batch, also when the scaler skipped the step (fp16 overflow)
        self.images += len(y)
        correct = (logits.argmax(1) == y).sum()
        return torch.stack([loss.detach(), correct.float(), self.one, self.one * len(y)])

    @property
    def steps(self) -> int:
        """Optimizer steps so far (the schedule's count: skipped fp16 steps included)."""
        return self.schedule.last_epoch  # an LRScheduler counts its steps in ``last_epoch``

    @property
    def steps_per_epoch(self) -> int:
        return self.total_steps // self.cfg.epochs

    @property
    def lr(self) -> float:
        return cast(float, self.opt.param_groups[0]["lr"])

    # -- going on after an epoch ---------------------------------------------------------------------------------

    def state(
        self,
        epoch: int,
        generators: dict[str, torch.Generator],
        history: list[dict[str, Any]],
        first_loss: float | None,
        elapsed: float,
    ) -> TrainState:
        """What going on after ``epoch`` needs (views of the live tensors: the listener saves them at once)."""
        states = {name: gen.get_state() for name, gen in generators.items()}
        states["torch"] = torch.get_rng_state()  # nothing draws from the global generators today; dropout would
        if self.device.type == "cuda":
            states["torch_cuda"] = torch.cuda.get_rng_state(self.device)
        return TrainState(
            epoch=epoch,
            steps_per_epoch=self.steps_per_epoch,
            weights=self.model.state_dict(),
            optimizer=self.opt.state_dict(),
            schedule=self.schedule.state_dict(),
            scaler=self.scaler.state_dict(),
            generators=states,
            history=history,
            first_loss=first_loss,
            images=self.images,
            elapsed=elapsed,
        )

    def load(self, state: TrainState, generators: dict[str, torch.Generator]) -> None:
        """Put ``state`` back: weights, optimizer, schedule, scaler and generators. ``BadCheckpoint`` when it does
        not fit this run: another network, optimizer or schedule, or data with a different number of batches."""
        where = f"the saved training state (epoch {state.epoch})"
        if state.steps_per_epoch != self.steps_per_epoch:
            raise BadCheckpoint(
                f"{where} was made with {state.steps_per_epoch} batches per epoch and the data now gives "
                f"{self.steps_per_epoch}: the training data changed, so the run cannot go on exactly"
            )
        if state.epoch > self.cfg.epochs:
            raise BadCheckpoint(f"{where} is past this run's {self.cfg.epochs} epochs")
        try:
            self._load(state, generators)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            why = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise BadCheckpoint(f"{where} does not fit this run: {why}") from None
        self.images = state.images

    def _load(self, state: TrainState, generators: dict[str, torch.Generator]) -> None:
        self.model.load_state_dict(state.weights)  # names and shapes checked; the copy keeps channels_last
        for name, tensor in self.model.state_dict().items():
            if not torch.isfinite(tensor).all():
                raise ValueError(f"{name} holds NaN or infinite values")
        # After the optimizer and schedule were made: making a schedule sets the optimizer's learning rate.
        for fresh, saved in zip(self.opt.param_groups, state.optimizer.get("param_groups", []), strict=False):
            _same_settings(fresh, saved)
        self.opt.load_state_dict(state.optimizer)
        for param in (p for group in self.opt.param_groups for p in group["params"]):
            for key, value in self.opt.state[param].items():
                if value.shape not in (param.shape, ()):
                    raise ValueError(f"the optimizer's {key} is {tuple(value.shape)}, not {tuple(param.shape)}")
                if value.shape == param.shape:  # in the parameter's layout (channels_last), as a fresh run has it
                    self.opt.state[param][key] = torch.empty_like(param).copy_(value)
        self.schedule.load_state_dict(_same_keys(self.schedule.state_dict(), state.schedule, "schedule"))
        if state.scaler or self.scaler.is_enabled():
            self.scaler.load_state_dict(state.scaler)
        for name, gen in generators.items():
            gen.set_state(state.generators[name])
        torch.set_rng_state(state.generators["torch"])
        if self.device.type == "cuda" and "torch_cuda" in state.generators:
            torch.cuda.set_rng_state(state.generators["torch_cuda"], self.device)


def _same_settings(fresh: dict[str, Any], saved: dict[str, Any]) -> None:
    """The same kind of optimizer, set up the same way: the same settings, and the same switches (AdamW and
    Adam differ only in ``decoupled_weight_decay``). Numbers may differ: a schedule moves the rate and momentum."""
    if set(fresh) != set(saved):
        raise ValueError(f"the optimizer has settings {sorted(set(saved) ^ set(fresh))[:3]} that this run's has not")
    for key, value in fresh.items():
        if key != "params" and not isinstance(value, (float, tuple)) and saved[key] != value:
            raise ValueError(f"the optimizer's {key} is {saved[key]!r}, this run's is {value!r}")


def _same_keys(fresh: dict[str, Any], saved: dict[str, Any], what: str) -> dict[str, Any]:
    """``saved`` when it has the keys and kinds of values a fresh ``what`` has: a schedule's ``load_state_dict``
    copies whatever it is given into its attributes, so a damaged one would only fail later, mid-training."""
    for key, value in fresh.items():
        if key not in saved or not isinstance(saved[key], type(value)) and value is not None:
            raise ValueError(f"the {what}'s {key} is missing or not a {type(value).__name__}")
    unknown = sorted(set(saved) - set(fresh))
    if unknown:
        raise ValueError(f"the {what} has settings this run does not ({', '.join(unknown[:3])})")
    return saved
