"""Training: the one loop (``train``/``evaluate``) with its optimizers and schedules."""

from cnn_core.training.loop import (  # the names callers use: ``from cnn_core.training import ...``
    AUTOCAST_DTYPES,
    EXPLODED,
    STUCK_AFTER_STEPS,
    Event,
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

__all__ = [
    "EXPLODED",
    "AUTOCAST_DTYPES",
    "STUCK_AFTER_STEPS",
    "Event",
    "TrainResult",
    "pick_device",
    "cpu_has_bf16",
    "pick_precision",
    "device_label",
    "run_device_label",
    "evaluate",
    "train",
    "likely_cause",
    "diverged",
    "stuck",
]
