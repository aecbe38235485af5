"""What a run will cost in memory and disk, computed from its config before anything is allocated.

A config can be valid and still ask for terabytes: a 65,536-wide fully connected layer after a 4,096-filter conv
on a 512×512 input is 7×10¹³ weights. ``check`` refuses such a run with one line of ``OverBudget`` naming the
limit and the number, before a tensor exists. The numbers come from the layer table (``cnn_core.shapes``), so
this module does no shape arithmetic of its own. Estimates are deliberately generous: refusing a run that
would have fitted is a message; starting one that does not fit is a frozen machine.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from cnn_core import settings
from cnn_core.config import ModelConfig, RunConfig
from cnn_core.errors import InvalidConfig, OverBudget
from cnn_core.shapes import layer_table, total_params

MB = 1024**2
GB = 1024**3
FLOAT_BYTES = 4  # float32 weights, gradients, optimizer state and activations (AMP only makes them smaller)
OPTIMIZER_COPIES = {"adam": 2, "adamw": 2, "sgd": 1}  # Adam's two moment estimates; SGD's momentum buffer
BACKWARD_FACTOR = 2  # the backward pass holds a gradient about the size of each saved output
INPUT_COPIES = 4  # a batch as float, augmented, its sampling grid (2 values a pixel) — beside the uint8 data
EVAL_BATCH = 1000  # train.evaluate's batch: no gradients, but 1,000 images at once
LABEL_BYTES = 8  # int64 labels held beside the images
CHECKPOINT_HEADER_BYTES = 16 * 1024  # safetensors' JSON header with the config, plus the .json sidecar
# A run's training state (what resuming needs, one file): the weights and the optimizer's state, plus its
# generators (three of 5 KB) and the epoch history as JSON (~600 bytes an epoch).
STATE_HEADER_BYTES, STATE_EPOCH_BYTES = 32 * 1024, 1024
LOAD_COPIES = 3  # loading a checkpoint holds the file's bytes, the parsed tensors and the freshly built model
MEMORY_FRACTION = 0.5  # of the memory available now: the app, the browser and the OS need the rest
DISK_FRACTION = 0.5  # of the free space where runs are stored: leave room for everything else
GPU_FRACTION = 0.9  # of free GPU memory: the CUDA caching allocator and cuDNN workspaces need some room
FALLBACK_AVAILABLE = 4 * GB  # when neither /proc/meminfo nor sysconf answers: a small laptop's free memory
MAX_ENV_MB = 10**9  # a petabyte: any larger number in the variables is a typo
MEMORY_ENV, DISK_ENV = "CNN_LAB_MAX_MEMORY_MB", "CNN_LAB_MAX_DISK_MB"


@dataclass(frozen=True)
class Cost:
    """What one run needs: parameters, memory while training, disk for its checkpoints."""

    params: int
    param_bytes: int  # the weights alone, float32
    weights_and_optimizer_bytes: int  # weights + gradients + optimizer state
    activation_bytes: int  # one training batch forward + backward (or one evaluation batch, if larger)
    dataset_bytes: int  # the training images held in memory as uint8 (0 when the count is unknown)
    training_memory_bytes: int  # the sum of the three above
    checkpoint_bytes: int  # one checkpoint file
    checkpoint_disk_bytes: int  # one checkpoint per epoch, the final model and the training state
    batch_size: int
    epochs: int

    def describe(self) -> str:
        """One line for a page or the CLI: '61,706 parameters · about 40 MB memory · 10 MB disk for 40 epochs'."""
        return (
            f"{self.params:,} parameters · about {human_bytes(self.training_memory_bytes)} memory · "
            f"{human_bytes(self.checkpoint_disk_bytes)} disk for {self.epochs} epochs"
        )


@dataclass(frozen=True)
class Limits:
    """The most memory and disk a run may use; ``gpu_memory_bytes`` None means 'ask CUDA when it is used'."""

    memory_bytes: int
    disk_bytes: int
    gpu_memory_bytes: int | None = None


def forward_elements(model: ModelConfig) -> int:
    """Values one image leaves in memory through the forward pass: every layer's output, kept for the backward.

    Each conv and hidden fc output appears twice (the layer's and its activation's), the input once normalised;
    flatten is a view and costs nothing.
    """
    elements = model.in_channels * model.input_size**2  # the normalised input
    layers = layer_table(model)
    last_fc = layers[-1].name
    for layer in layers:
        c, h, w = layer.output_shape
        copies = {"conv": 2, "pool": 1, "flatten": 0, "fc": 1 if layer.name == last_fc else 2}[layer.type]
        elements += copies * c * h * w
    return elements


def estimate(run: RunConfig, train_images: int | None = None) -> Cost:
    """The cost of ``run`` from its config alone (and the training set's size, when known); allocates nothing."""
    model, train = run.model, run.train
    layers = layer_table(model)
    params = total_params(layers)
    copies = 2 + (0 if train.optimizer == "sgd" and train.momentum == 0 else OPTIMIZER_COPIES[train.optimizer])
    image_elements = model.in_channels * model.input_size**2
    per_image = forward_elements(model) * BACKWARD_FACTOR + image_elements * INPUT_COPIES
    widest = max([image_elements] + [c * h * w for c, h, w in (layer.output_shape for layer in layers)])
    activations = max(per_image * train.batch_size, 2 * widest * EVAL_BATCH) * FLOAT_BYTES
    dataset = (train_images or 0) * (image_elements + LABEL_BYTES)
    checkpoint = params * FLOAT_BYTES + CHECKPOINT_HEADER_BYTES
    state = params * FLOAT_BYTES * (1 + OPTIMIZER_COPIES[train.optimizer]) + STATE_HEADER_BYTES
    return Cost(
        params=params,
        param_bytes=params * FLOAT_BYTES,
        weights_and_optimizer_bytes=params * FLOAT_BYTES * copies,
        activation_bytes=activations,
        dataset_bytes=dataset,
        training_memory_bytes=params * FLOAT_BYTES * copies + activations + dataset,
        checkpoint_bytes=checkpoint,
        checkpoint_disk_bytes=checkpoint * (train.epochs + 1) + state + STATE_EPOCH_BYTES * train.epochs,
        batch_size=train.batch_size,
        epochs=train.epochs,
    )


def check(run: RunConfig, limits: Limits | None = None, train_images: int | None = None) -> Cost:
    """The run's cost, or ``OverBudget`` in one line when it needs more memory, GPU memory or disk than allowed."""
    cost = estimate(run, train_images)
    limits = limits or default_limits()
    gpu = _gpu_limit(run.train.device, limits)
    memory_hint = f"set {MEMORY_ENV} to change it"
    if gpu is None and cost.training_memory_bytes > limits.memory_bytes:
        raise OverBudget(_memory_message(cost, "memory", limits.memory_bytes, memory_hint))
    # On CUDA the weights, optimizer state, activations and the dataset live on the GPU; the host holds the
    # dataset and the model it builds before moving them there.
    if gpu is not None and cost.param_bytes + cost.dataset_bytes > limits.memory_bytes:
        raise OverBudget(_memory_message(cost, "memory", limits.memory_bytes, memory_hint, host_only=True))
    if gpu is not None and cost.training_memory_bytes > gpu:
        gpu_hint = f"{GPU_FRACTION:.0%} of the GPU's free memory; or train on the CPU"
        raise OverBudget(_memory_message(cost, "GPU memory", gpu, gpu_hint))
    if cost.checkpoint_disk_bytes > limits.disk_bytes:
        raise OverBudget(
            f"this run needs about {human_bytes(cost.checkpoint_disk_bytes)} of disk "
            f"({cost.epochs + 1:,} checkpoints of "
            f"{human_bytes(cost.checkpoint_bytes)}: one per epoch and the final model, and the training state that "
            "resumes it); the limit is "
            f"{human_bytes(limits.disk_bytes)} (set {DISK_ENV} to change it)"
        )
    return cost


def check_model(model: ModelConfig, limits: Limits | None = None) -> int:
    """Bytes needed to load a checkpoint of ``model`` and run one image; ``OverBudget`` before building it."""
    params = total_params(layer_table(model))
    need = params * FLOAT_BYTES * LOAD_COPIES + forward_elements(model) * FLOAT_BYTES
    limit = (limits or default_limits()).memory_bytes
    if need > limit:
        raise OverBudget(
            f"this model needs about {human_bytes(need)} of memory to load ({params:,} parameters); the limit is "
            f"{human_bytes(limit)} (set {MEMORY_ENV} to change it)"
        )
    return need


def default_limits(runs_dir: Path | None = None) -> Limits:
    """Limits from this machine (a fraction of the memory available and of the free disk), or the variables."""
    memory = _env_bytes(MEMORY_ENV)
    disk = _env_bytes(DISK_ENV)
    if memory is None:
        memory = int(available_memory() * MEMORY_FRACTION)
    if disk is None:
        disk = int(shutil.disk_usage(_existing_parent(runs_dir or settings.runs_dir())).free * DISK_FRACTION)
    return Limits(memory_bytes=memory, disk_bytes=disk)


def available_memory() -> int:
    """Bytes this process could still allocate: MemAvailable, capped by a container's memory limit."""
    available = _meminfo_available() or _sysconf_available() or FALLBACK_AVAILABLE
    return min(available, _cgroup_limit() or available)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sysconf_available() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (OSError, ValueError, AttributeError):  # AttributeError: no os.sysconf on Windows
        return None


def _cgroup_limit() -> int | None:
    """A container's memory limit (cgroup v2, then v1), where /proc/meminfo shows the whole host; None if none.

    The limit itself, not the limit minus usage: usage counts the page cache, which the kernel gives back."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = Path(path).read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" (v2) or about 2**63 (v1) mean no limit
            return int(limit)
    return None


def _env_bytes(name: str) -> int | None:
    """A limit in megabytes from the environment variable ``name``; None when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not re.fullmatch(r"[0-9]{1,10}", raw) or not 1 <= int(raw) <= MAX_ENV_MB:
        shown = raw if len(raw) <= 30 else raw[:27] + "..."
        raise InvalidConfig(f"{name}: expected a whole number of megabytes from 1 to {MAX_ENV_MB:,}, got {shown!r}")
    return int(raw) * MB


def _existing_parent(path: Path) -> Path:
    """The folder itself or its nearest existing parent: the runs folder may not be created yet."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _gpu_limit(device: str, limits: Limits) -> int | None:
    """The GPU memory a run may use when it will train on CUDA; None when it trains elsewhere."""
    if device not in ("cuda", "auto"):
        return None
    import torch  # late: only a run that may use CUDA needs it

    if not torch.cuda.is_available():
        return None
    if limits.gpu_memory_bytes is not None:
        return limits.gpu_memory_bytes
    free, _total = torch.cuda.mem_get_info()
    return int(free * GPU_FRACTION)


def _memory_message(cost: Cost, what: str, limit: int, hint: str, host_only: bool = False) -> str:
    """'this run needs about 48.0 GB of memory (batch 128: activations 47.2 GB, ...); the limit is ... (hint)'."""
    if host_only:
        need, parts = cost.param_bytes + cost.dataset_bytes, [f"weights {human_bytes(cost.param_bytes)}"]
    else:
        need = cost.training_memory_bytes
        parts = [
            f"batch {cost.batch_size:,}: activations {human_bytes(cost.activation_bytes)}",
            f"weights and optimizer {human_bytes(cost.weights_and_optimizer_bytes)}",
        ]
    parts += [f"dataset {human_bytes(cost.dataset_bytes)}"] if cost.dataset_bytes else []
    return (
        f"this run needs about {human_bytes(need)} of {what} ({', '.join(parts)}); "
        f"the limit is {human_bytes(limit)} ({hint})"
    )


def human_bytes(n: int) -> str:
    """Bytes for people: '48.0 GB', '38 MB', '12 KB' (binary units, as the MB of the variables)."""
    if n >= 1024 * GB:
        return f"{n / (1024 * GB):,.1f} TB"
    if n >= GB:
        return f"{n / GB:,.1f} GB"
    if n >= MB:
        return f"{n / MB:.0f} MB"
    return f"{n // 1024} KB" if n >= 1024 else f"{n} bytes"
