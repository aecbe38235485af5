"""Predict the class of real images with a checkpoint: prepared as the model's data was, softmax, top class."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from cnn_core.data.photo import photo_steps
from cnn_core.data.preprocess import digit_steps, load_image
from cnn_core.errors import BadImage
from cnn_core.model import ConvNet


def probabilities(model: ConvNet, image: np.ndarray) -> np.ndarray:
    """Softmax probabilities for one prepared float image in [0, 1]: (H, W) grey or (C, H, W)."""
    x = torch.as_tensor(image, dtype=torch.float32)
    x = x.reshape(1, -1, *x.shape[-2:])
    channels = model.config.in_channels
    if x.shape[1] != channels:  # a grey digit shown to an RGB model: repeat it on every channel
        x = x.mean(1, keepdim=True).repeat(1, channels, 1, 1)
    device = next(model.parameters()).device
    return model.predict_proba(x.to(device))[0].cpu().numpy()


def prepare(model: ConvNet, source: str | os.PathLike[str] | bytes, preprocess: str = "digit") -> np.ndarray:
    """An image file made into the model's input: MNIST's recipe for digit models, square-and-resize for photos."""
    size = model.config.input_size
    if preprocess.startswith("photo:"):
        photo = photo_steps(load_image(source, draft=size), size, model.config.in_channels, preprocess[6:])
        return photo.model_input
    steps = digit_steps(load_image(source))
    return steps.centred if size == 28 else _resize(steps.centred, size)


def predict_file(
    model: ConvNet,
    source: str | os.PathLike[str] | bytes,
    label: str | None = None,
    preprocess: str = "digit",
    classes: list[str] | None = None,
) -> dict[str, Any]:
    """One JSON-ready answer: ``path``, ``prediction`` (and ``class``), ``probabilities``; or ``error``."""
    label = label if label is not None else os.fspath(source) if not isinstance(source, bytes) else "<bytes>"
    try:
        image = prepare(model, source, preprocess)
    except BadImage as err:
        return {"path": label, "error": str(err)}
    probs = probabilities(model, image)
    answer = {"path": label, "prediction": int(probs.argmax())}
    if classes is not None:
        answer["class"] = classes[int(probs.argmax())]
    return answer | {"confidence": float(probs.max()), "probabilities": [round(float(p), 6) for p in probs]}


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    x = torch.as_tensor(image)[None, None]
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)[0, 0].numpy()
