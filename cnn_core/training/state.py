"""A training state: everything ``train`` needs to go on after an epoch as if it had never stopped.

The weights, the optimizer's moments, the schedule, the fp16 loss scaler, the random generators (the data
order and the augmentation draws are the loop's own CPU generators; torch's global ones are kept too, for
layers such as dropout that draw from them), the epoch history and the counters the loop's checks read.
Python's ``random`` and numpy's generators are not kept: the loop never draws from them.

On disk it is one ``.safetensors`` file: the tensors, and the rest as JSON in the header (tuples and integer
keys kept, so an optimizer's state comes back exactly), with a SHA-256 of the tensors. Nothing is unpickled,
so a run folder copied from a stranger cannot run code here; a damaged file is refused with one line.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from cnn_core import safejson
from cnn_core.errors import BadCheckpoint
from cnn_core.files import atomic_write
from cnn_core.model.checkpoint import MAX_CHECKPOINT_BYTES, weights_sha256

FORMAT = "cnn-lab-train-state/1"
# Weights plus Adam's two moments are three times a checkpoint; the generators and the JSON add a few KB.
MAX_STATE_BYTES = 4 * MAX_CHECKPOINT_BYTES
MAX_HEADER_BYTES = 16 * 1024 * 1024  # the JSON part: a 1,000-epoch history is ~300 KB


@dataclass(frozen=True)
class TrainState:
    """The loop's state after epoch ``epoch``. Made by ``train`` for its ``on_epoch_end`` listener, it holds
    the live tensors of the model and the optimizer: save it before the loop goes on."""

    epoch: int
    steps_per_epoch: int  # the data it was made with: a resumed run must see as many batches per epoch
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # Optimizer.state_dict()
    schedule: dict[str, Any]  # LRScheduler.state_dict()
    scaler: dict[str, Any]  # GradScaler.state_dict(): empty unless the run trains in fp16
    generators: dict[str, torch.Tensor]  # name -> Generator.get_state()
    history: list[dict[str, Any]]  # the "epoch" events so far, as Event.to_dict() gives them
    first_loss: float | None  # the first logged loss: what divergence is measured against
    images: int  # images trained on so far
    elapsed: float  # seconds of training so far


def save_state(path: str | os.PathLike[str], state: TrainState) -> Path:
    """Write ``state`` whole or not at all (``atomic_write``); the path."""
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(
        {
            "epoch": state.epoch,
            "steps_per_epoch": state.steps_per_epoch,
            "weights": state.weights,
            "optimizer": state.optimizer,
            "schedule": state.schedule,
            "scaler": state.scaler,
            "generators": state.generators,
            "history": state.history,
            "first_loss": state.first_loss,
            "images": state.images,
            "elapsed": state.elapsed,
        },
        tensors,
    )
    meta = {"format": FORMAT, "state": json.dumps(tree), "sha256": weights_sha256(tensors)}
    path = Path(path)
    atomic_write(path, save_safetensors_bytes(tensors, metadata=meta))
    return path


def load_state(path: str | os.PathLike[str]) -> TrainState:
    """Read a state ``save_state`` wrote; ``BadCheckpoint`` with one line when it is missing, damaged or not one."""
    path = Path(path)
    label = f"the training state {path}"
    data = _read(path, label)
    length = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else -1
    if not 0 < length <= min(MAX_HEADER_BYTES, len(data) - 8):
        raise BadCheckpoint(f"{label} is truncated or not a safetensors file")
    header = safejson.loads(data[8 : 8 + length], f"{label}'s header", error=BadCheckpoint, max_bytes=MAX_HEADER_BYTES)
    try:
        tensors = load_safetensors_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        why = str(err).splitlines()[0].removeprefix("Error while deserializing: ")[:200]
        raise BadCheckpoint(f"{label} is truncated or damaged ({why})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("state"), str):
        raise BadCheckpoint(f"{label} is not a CNN Lab training state")
    if meta.get("sha256") != weights_sha256(tensors):
        raise BadCheckpoint(f"{label} is damaged: its tensors do not match the SHA-256 recorded when it was saved")
    tree = safejson.loads(meta["state"], label, error=BadCheckpoint, max_bytes=MAX_HEADER_BYTES)
    try:
        fields = _decode(tree, tensors)
        state = TrainState(**fields)
    except (KeyError, TypeError, ValueError) as err:
        raise BadCheckpoint(f"{label} is damaged: {type(err).__name__} {str(err)[:200]}") from None
    _check_types(state, label)
    return state


def _read(path: Path, label: str) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        raise BadCheckpoint(f"{label} does not exist") from None
    except OSError as err:
        raise BadCheckpoint(f"cannot read {label}: {err.strerror or err}") from None
    if len(data) > MAX_STATE_BYTES:
        raise BadCheckpoint(f"{label} is larger than {MAX_STATE_BYTES // 2**20} MB: not one CNN Lab wrote")
    return data


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON for ``value``, its tensors moved into ``tensors``: a tensor, tuple or dict becomes a one-key object
    (``{"tensor": name}``, ``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}``, keys str or int)."""
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().to("cpu").contiguous()
        return {"tensor": name}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, (str, int)) for k in value):
            raise TypeError(f"a training state's keys are text or integers, not {sorted(map(repr, value))[:3]}")
        return {"dict": [[k, _encode(v, tensors)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a training state cannot hold a {type(value).__name__}")  # a bug: a new kind of state


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    (kind, inner), *rest = value.items()
    if rest or kind not in ("tensor", "tuple", "dict"):
        raise ValueError(f"unknown entry {sorted(value)[:3]}")
    if kind == "tensor":
        return tensors[inner]
    if kind == "tuple":
        return tuple(_decode(v, tensors) for v in inner)
    return {_key(k): _decode(v, tensors) for k, v in inner}


def _key(key: Any) -> str | int:
    if not isinstance(key, (str, int)) or isinstance(key, bool):
        raise TypeError(f"a key that is {type(key).__name__}")
    return key


def _check_types(state: TrainState, label: str) -> None:
    """The fields' kinds, so that a damaged file fails here in one line, not in the middle of training."""
    checks = {
        "epoch": isinstance(state.epoch, int) and state.epoch >= 0,
        "steps_per_epoch": isinstance(state.steps_per_epoch, int) and state.steps_per_epoch > 0,
        "weights": _tensors(state.weights),
        "optimizer": isinstance(state.optimizer, dict),
        "schedule": isinstance(state.schedule, dict),
        "scaler": isinstance(state.scaler, dict),
        "generators": _tensors(state.generators),
        "history": isinstance(state.history, list) and all(isinstance(e, dict) for e in state.history),
        "first_loss": state.first_loss is None or isinstance(state.first_loss, float),
        "images": isinstance(state.images, int),
        "elapsed": isinstance(state.elapsed, float),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise BadCheckpoint(f"{label} is damaged: {', '.join(bad)} not as saved")


def _tensors(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
