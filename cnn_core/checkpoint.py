"""Checkpoints: ``.safetensors`` weights with the model config inside, written atomically.

Never ``torch.load``: a user's file is only ever parsed as safetensors (a JSON header and raw
tensors), and everything is validated — header size, keys, shapes against the saved config,
dtypes and finite values — before a model is built from it.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from cnn_core.config import ModelConfig
from cnn_core.errors import BadCheckpoint, InvalidConfig
from cnn_core.model import ConvNet, build_model

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
BUNDLED = {  # name -> what it is; made by scripts/make_checkpoints.py
    "lenet5-mnist-max": "LeNet-5, max pooling, trained on the bundled MNIST sample",
    "lenet5-mnist-avg": "LeNet-5, average pooling, trained on the bundled MNIST sample",
}
DEFAULT_CHECKPOINT = "lenet5-mnist-max"
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # LeNet-5 is 250 KB; anything near this is not ours
MAX_HEADER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Checkpoint:
    model: ConvNet
    config: ModelConfig
    metadata: dict[str, Any]  # metrics, dataset, epoch, ... as saved


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers see all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, config: ModelConfig, metadata: dict[str, Any] | None = None
) -> Path:
    """Save weights + config atomically; refuses non-finite weights (a diverged model is not kept)."""
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise BadCheckpoint(f"refusing to save non-finite weights ({', '.join(bad[:3])})")
    meta = {"format": "cnn-lab/1", "config": json.dumps(config.to_dict())}
    meta.update({k: json.dumps(v) for k, v in (metadata or {}).items()})
    path = Path(path)
    atomic_write(path, save_safetensors_bytes(state, metadata=meta))
    sidecar = {"model": config.to_dict(), **(metadata or {})}
    atomic_write(path.with_suffix(".json"), json.dumps(sidecar, indent=2).encode())
    return path


def resolve_checkpoint(name_or_path: str | os.PathLike | None) -> Path:
    """A bundled name (``lenet5-mnist-max``) or a path to a ``.safetensors`` file."""
    name = os.fspath(name_or_path) if name_or_path is not None else DEFAULT_CHECKPOINT
    if name in BUNDLED:
        return CHECKPOINT_DIR / f"{name}.safetensors"
    path = Path(name)
    if not path.is_file():
        raise BadCheckpoint(f"no checkpoint named {name!r}: not one of {', '.join(BUNDLED)} and no such file")
    if path.suffix != ".safetensors":
        raise BadCheckpoint(f"{path.name}: only .safetensors checkpoints are accepted (pickles are never loaded)")
    return path


def load_checkpoint(source: str | os.PathLike | bytes | None = None, device: str = "cpu") -> Checkpoint:
    """Load and validate a checkpoint from a bundled name, a path or raw bytes (an upload)."""
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), "uploaded checkpoint"
    else:
        path = resolve_checkpoint(source)
        if path.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise BadCheckpoint(f"{path.name}: larger than {MAX_CHECKPOINT_BYTES // 2**20} MB")
        data, label = path.read_bytes(), path.name
    metadata = _read_header_metadata(data, label)
    try:
        tensors = load_safetensors_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise BadCheckpoint(f"{label}: not a valid safetensors file ({str(err).splitlines()[0]})") from None
    try:
        config = ModelConfig.from_dict(json.loads(metadata.get("config", "null")) or {})
    except (InvalidConfig, TypeError, json.JSONDecodeError) as err:
        raise BadCheckpoint(f"{label}: its saved config is invalid: {err}") from None
    model = build_model(config)
    _check_state(tensors, model, label)
    model.load_state_dict(tensors)
    model.to(device).eval()
    extra = {}
    for key, value in metadata.items():
        if key not in ("format", "config"):
            try:
                extra[key] = json.loads(value)
            except json.JSONDecodeError:
                extra[key] = value
    return Checkpoint(model, config, extra)


def _read_header_metadata(data: bytes, label: str) -> dict[str, str]:
    if len(data) < 8:
        raise BadCheckpoint(f"{label}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES or header_len > len(data) - 8:
        raise BadCheckpoint(f"{label}: header length {header_len} is impossible (truncated or not safetensors)")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadCheckpoint(f"{label}: its header is not JSON (not a safetensors file)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or "config" not in meta:
        raise BadCheckpoint(f"{label}: no CNN Lab model config in its metadata")
    return meta


def _check_state(tensors: dict[str, torch.Tensor], model: nn.Module, label: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise BadCheckpoint(
            f"{label}: weights do not match its config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for key, ref in expected.items():
        got = tensors[key]
        if got.shape != ref.shape:
            raise BadCheckpoint(
                f"{label}: size mismatch for {key}: file has {tuple(got.shape)}, config needs {tuple(ref.shape)}"
            )
        if got.dtype != torch.float32:
            raise BadCheckpoint(f"{label}: {key} is {got.dtype}, expected float32")
        if not torch.isfinite(got).all():
            raise BadCheckpoint(f"{label}: {key} holds NaN or infinite values")


def bundled_checkpoints() -> list[dict[str, Any]]:
    """The shipped checkpoints with their recorded metrics (from the sidecar JSON files)."""
    rows = []
    for name, description in BUNDLED.items():
        sidecar = CHECKPOINT_DIR / f"{name}.json"
        info = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        rows.append(
            {
                "name": name,
                "description": description,
                "available": (CHECKPOINT_DIR / f"{name}.safetensors").is_file(),
                "test_accuracy": info.get("test_accuracy"),
                "official_test_accuracy": info.get("official_test_accuracy"),
                "test_set": info.get("test_set"),
            }
        )
    return rows
