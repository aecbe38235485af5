"""Checkpoints: ``.safetensors`` weights with the model config inside, written atomically.

Never ``torch.load``: a user's file is only ever parsed as safetensors (a JSON header and raw
tensors), and everything is validated — header size, keys, shapes against the saved config,
dtypes, finite values and the weights' SHA-256 — before a model is built from it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from cnn_core import safejson
from cnn_core.config import ModelConfig, budget
from cnn_core.errors import BadCheckpoint, InvalidConfig
from cnn_core.files import atomic_write as atomic_write  # also for the run and sweep records
from cnn_core.model import ConvNet, build_model
from cnn_core.safetext import escape_controls
from cnn_core.settings import checkpoints_dir

BUNDLED = {  # name -> what it is; made by scripts/make_checkpoints.py
    "lenet5-mnist-max": "LeNet-5, max pooling, trained on the bundled MNIST sample",
    "lenet5-mnist-avg": "LeNet-5, average pooling, trained on the bundled MNIST sample",
}
# The bundled files' weights_sha256, shipped with the code: a damaged or swapped bundled file is refused even
# if its own recorded hash were rewritten to match. scripts/make_checkpoints.py prints them when it remakes them.
BUNDLED_SHA256 = {
    "lenet5-mnist-max": "6ab8a91e8a7906d655f080600f0e8c0615fc3744383d87c85f869049bf61d454",
    "lenet5-mnist-avg": "ab2976691868196a49167ae82f4fa650cba6095e485f64c4b139c82fdbc9599c",
}
DEFAULT_CHECKPOINT = "lenet5-mnist-max"
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # LeNet-5 is 250 KB; anything near this is not ours
MAX_HEADER_BYTES = 1024 * 1024
HASH_KEY = "weights_sha256"  # in the safetensors metadata and the .json sidecar; see weights_sha256()
# mkstemp's names in atomic_write: "." + the file's name + "." + 8 random characters + ".tmp"
PARTIAL_WRITE = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


PREPROCESSES = ("digit", "photo:crop", "photo:pad")  # saved by cnn_core.runs.runner from Dataset.preprocess


@dataclass(frozen=True)
class Checkpoint:
    model: ConvNet
    config: ModelConfig
    metadata: dict[str, Any]  # metrics, dataset, epoch, ... as saved
    verified: bool = False  # its weights matched a recorded SHA-256; False: it had none (an old or foreign file)

    @property
    def preprocess(self) -> str:
        """How an outside image is prepared for this model: "digit", "photo:crop" or "photo:pad"."""
        value = self.metadata.get("preprocess")
        return value if value in PREPROCESSES else "digit"  # saved before photos existed: an MNIST digit model

    @property
    def classes(self) -> list[str]:
        """The class names saved with the model, or 0, 1, 2, ... when it has none (or they do not fit)."""
        names = self.metadata.get("classes")
        if isinstance(names, list) and len(names) == self.config.num_classes and all(isinstance(n, str) for n in names):
            return [escape_controls(n[:64]) for n in names]  # the file's maker chose them: shown, never obeyed
        return [str(i) for i in range(self.config.num_classes)]


def remove_partial_writes(folder: Path, min_age_s: float = 60.0) -> list[Path]:
    """Delete the temp files that interrupted atomic writes left in ``folder`` (and below); return them.

    A write takes milliseconds, so only files older than ``min_age_s`` are taken: a writer in another
    process that is saving right now keeps its temp file.
    """
    removed, cutoff = [], time.time() - min_age_s
    for root, _dirs, files in os.walk(folder):  # does not follow symlinked folders
        for name in files:
            path = Path(root) / name
            if not PARTIAL_WRITE.fullmatch(name):
                continue
            with contextlib.suppress(FileNotFoundError):
                info = path.lstat()
                if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
    return removed


def weights_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict, independent of how safetensors lays the file out.

    For each tensor in sorted name order: the line ``"<name> <dtype> <d0>x<d1>...\n"`` (dtype as PyTorch
    names it without ``torch.``, e.g. ``float32``; a scalar's shape is empty) in UTF-8, then its elements in
    C order as little-endian bytes (the byte order safetensors stores and every platform PyTorch runs on).
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        shape = "x".join(str(d) for d in tensor.shape)
        digest.update(f"{name} {str(tensor.dtype).removeprefix('torch.')} {shape}\n".encode())
        # Ignored below: numpy's stubs give ndarray __buffer__ (a Buffer) on Python 3.12+ only
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # type: ignore[arg-type]
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str], model: nn.Module, config: ModelConfig, metadata: dict[str, Any] | None = None
) -> Path:
    """Save weights + config + their SHA-256 atomically; refuses non-finite weights (a diverged model is not kept)."""
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise BadCheckpoint(f"refusing to save non-finite weights ({', '.join(bad[:3])})")
    digest = weights_sha256(state)
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    meta.update({"format": "cnn-lab/1", "config": json.dumps(config.to_dict()), HASH_KEY: digest})
    path = Path(path)
    atomic_write(path, save_safetensors_bytes(state, metadata=meta))
    sidecar = {"model": config.to_dict(), **(metadata or {}), HASH_KEY: digest}
    atomic_write(path.with_suffix(".json"), json.dumps(sidecar, indent=2).encode())
    return path


def resolve_checkpoint(name_or_path: str | os.PathLike[str] | None) -> Path:
    """A bundled name (``lenet5-mnist-max``) or a path to a ``.safetensors`` file."""
    name = os.fspath(name_or_path) if name_or_path is not None else DEFAULT_CHECKPOINT
    if name in BUNDLED:
        return checkpoints_dir() / f"{name}.safetensors"
    path = Path(name)
    try:
        mode = path.stat().st_mode  # stat, never open: opening a FIFO for reading waits for a writer
    except FileNotFoundError:
        raise BadCheckpoint(f"no checkpoint named {name!r}: not one of {', '.join(BUNDLED)} and no such file") from None
    except OSError as err:
        raise BadCheckpoint(_unreadable(path, err)) from None
    _check_regular(path, mode)
    if path.suffix != ".safetensors":
        raise BadCheckpoint(f"{path.name}: only .safetensors checkpoints are accepted (pickles are never loaded)")
    return path


def _unreadable(path: Path, err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return f"{path} is a symlink loop"
    if isinstance(err, FileNotFoundError):
        return f"{path} does not exist"
    return f"cannot read {path}: {err.strerror or err}"


def _check_regular(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise BadCheckpoint(f"{path} is a folder, not a checkpoint file")
    if not stat.S_ISREG(mode):
        raise BadCheckpoint(f"{path} is not a regular file")


def _read_checkpoint_file(path: Path) -> bytes:
    """The file's bytes, refusing what is not a regular file or is too large, without ever blocking."""
    try:
        # O_NONBLOCK: should the path have become a FIFO since it was resolved, open returns at once
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise BadCheckpoint(_unreadable(path, err)) from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        _check_regular(path, info.st_mode)
        if info.st_size > MAX_CHECKPOINT_BYTES:
            raise BadCheckpoint(f"{path.name}: larger than {MAX_CHECKPOINT_BYTES // 2**20} MB")
        data = fh.read(MAX_CHECKPOINT_BYTES + 1)  # bounded, should it grow while we read
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise BadCheckpoint(f"{path.name}: larger than {MAX_CHECKPOINT_BYTES // 2**20} MB")
    return data


def load_checkpoint(source: str | os.PathLike[str] | bytes | None = None, device: str = "cpu") -> Checkpoint:
    """Load and validate a checkpoint from a bundled name, a path or raw bytes (an upload)."""
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), "uploaded checkpoint"
    else:
        path = resolve_checkpoint(source)
        data, label = _read_checkpoint_file(path), path.name
    metadata = _read_header_metadata(data, label)
    try:
        tensors = load_safetensors_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise BadCheckpoint(f"{label}: not a valid safetensors file ({str(err).splitlines()[0]})") from None
    bundled = _bundled_name(source)
    verified = _verify(tensors, metadata.get(HASH_KEY), BUNDLED_SHA256.get(bundled) if bundled else None, label)
    config_json = safejson.loads(metadata["config"], f"{label}'s saved config", error=BadCheckpoint)
    try:
        config = ModelConfig.from_dict(config_json or {})
    except (InvalidConfig, TypeError) as err:
        raise BadCheckpoint(f"{label}: its saved config is invalid: {err}") from None
    budget.check_model(config)  # a stranger's config could describe a model too big to build here
    _check_state(tensors, _shapes_of(config), label)  # before building: a mismatch costs nothing
    model = build_model(config)
    model.load_state_dict(tensors)
    model.to(device).eval()
    return Checkpoint(model, config, _extra_metadata(metadata), verified)


def unverified_note(source: str | os.PathLike[str] | None) -> str:
    """What the CLI and the pages say of a checkpoint that records no SHA-256 of its weights."""
    name = escape_controls(Path(os.fspath(source)).name if source is not None else DEFAULT_CHECKPOINT)
    return f"{name} is unverified: it records no SHA-256 of its weights, so damage to it cannot be detected"


def _bundled_name(source: str | os.PathLike[str] | bytes | None) -> str | None:
    name = DEFAULT_CHECKPOINT if source is None else source if isinstance(source, str) else None
    return name if name in BUNDLED else None


def _verify(tensors: dict[str, torch.Tensor], recorded: str | None, shipped: str | None, label: str) -> bool:
    """Check the weights against every SHA-256 known for them (the file's own, the one shipped for a bundled
    file); False when there is none to check: such a file loads, validated by shape, dtype and finiteness only,
    and is shown as unverified."""
    if recorded is None and shipped is None:
        return False
    actual = weights_sha256(tensors)
    if recorded is not None and actual != recorded:
        raise BadCheckpoint(
            f"{label}: its weights do not match the SHA-256 recorded when it was saved: the file is damaged"
        )
    if shipped is not None and actual != shipped:
        raise BadCheckpoint(f"{label}: its weights are not the ones CNN Lab shipped: the bundled file is damaged")
    return True


def _extra_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """Metrics, dataset, epoch, ... decoded from JSON where they are JSON; anything else kept as text."""
    extra: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in ("format", "config"):
            continue
        try:
            extra[key] = value if key == HASH_KEY else safejson.loads(value, key, error=BadCheckpoint)
        except BadCheckpoint:
            extra[key] = value
    return extra


def _read_header_metadata(data: bytes, label: str) -> dict[str, str]:
    if len(data) < 8:
        raise BadCheckpoint(f"{label}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES or header_len > len(data) - 8:
        raise BadCheckpoint(f"{label}: header length {header_len} is impossible (truncated or not safetensors)")
    header = safejson.loads(data[8 : 8 + header_len], f"{label}'s safetensors header", error=BadCheckpoint)
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), str):
        raise BadCheckpoint(f"{label}: no CNN Lab model config in its metadata")
    if not all(isinstance(v, str) for v in meta.values()):
        raise BadCheckpoint(f"{label}: its metadata holds values that are not text (not safetensors)")
    return meta


def _shapes_of(config: ModelConfig) -> nn.Module:
    """The network a config describes, on PyTorch's "meta" device: every parameter's name and shape, no memory
    and no initialisation (a config within the limits may still describe gigabytes of weights)."""
    with torch.device("meta"):
        return build_model(config)


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
    rows, folder = [], checkpoints_dir()
    for name, description in BUNDLED.items():
        info = _read_sidecar(folder / f"{name}.json")
        rows.append(
            {
                "name": name,
                "description": description,
                "available": (folder / f"{name}.safetensors").is_file(),
                "test_accuracy": info.get("test_accuracy"),
                "official_test_accuracy": info.get("official_test_accuracy"),
                "test_set": info.get("test_set"),
            }
        )
    return rows


def _read_sidecar(path: Path) -> dict[str, Any]:
    """A sidecar's metrics, or none when it is missing or unreadable: it only adds numbers to a listing."""
    try:
        info = safejson.loads(path.read_bytes(), path.name, error=BadCheckpoint) if path.is_file() else {}
    except (OSError, BadCheckpoint):
        return {}
    return info if isinstance(info, dict) else {}
