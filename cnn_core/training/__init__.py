"""Training: the one loop (``train``/``evaluate``) with its optimizers and schedules, and the state that
resumes it after an epoch (``TrainState``, ``save_state``, ``load_state``)."""

from cnn_core.training.loop import (  # the names callers use: ``from cnn_core.training import ...``
    EXPLODED,
    STUCK_AFTER_STEPS,
    STUCK_MIN_STEPS,
    Event,
    Outcome,
    TrainResult,
    cpu_has_bf16,
    device_label,
    diverged,
    evaluate,
    likely_cause,
    pick_device,
    pick_precision,
    run_device_label,
    stuck,
    train,
)
from cnn_core.training.state import TrainState, load_state, save_state
from cnn_core.training.stepper import AUTOCAST_DTYPES

__all__ = [
    "AUTOCAST_DTYPES",
    "cpu_has_bf16",
    "device_label",
    "diverged",
    "evaluate",
    "Event",
    "EXPLODED",
    "likely_cause",
    "load_state",
    "Outcome",
    "pick_device",
    "pick_precision",
    "run_device_label",
    "save_state",
    "stuck",
    "STUCK_AFTER_STEPS",
    "STUCK_MIN_STEPS",
    "train",
    "TrainResult",
    "TrainState",
]
