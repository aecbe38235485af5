"""Predict digits in real images with a checkpoint: preprocess like MNIST, softmax, top class."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from cnn_core.errors import BadImage
from cnn_core.model import ConvNet
from cnn_core.preprocess import digit_steps, load_image


def probabilities(model: ConvNet, image28: np.ndarray) -> np.ndarray:
    """Softmax probabilities for one preprocessed (28, 28) float image in [0, 1]."""
    x = torch.as_tensor(image28, dtype=torch.float32).reshape(1, 1, *image28.shape[-2:])
    channels = model.config.in_channels
    if channels != 1:  # a grey digit shown to an RGB model: repeat it on every channel
        x = x.repeat(1, channels, 1, 1)
    device = next(model.parameters()).device
    return model.predict_proba(x.to(device))[0].cpu().numpy()


def predict_file(model: ConvNet, source: str | os.PathLike | bytes, label: str | None = None) -> dict[str, Any]:
    """One JSON-ready answer: ``path``, ``prediction`` and ``probabilities``, or ``error`` for a bad image."""
    label = label if label is not None else os.fspath(source) if not isinstance(source, bytes) else "<bytes>"
    try:
        size = model.config.input_size
        steps = digit_steps(load_image(source))
        image = steps.centred if size == 28 else _resize(steps.centred, size)
    except BadImage as err:
        return {"path": label, "error": str(err)}
    probs = probabilities(model, image)
    return {
        "path": label,
        "prediction": int(probs.argmax()),
        "confidence": float(probs.max()),
        "probabilities": [round(float(p), 6) for p in probs],
    }


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    x = torch.as_tensor(image)[None, None]
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)[0, 0].numpy()
