"""Frozen, validated configuration: one dataclass for the network, one for training.

The same objects flow from a slider or a JSON file to the worker process and into the saved
run, so there is one spelling of every hyperparameter. An invalid config cannot be built:
``__post_init__`` checks every field's type and range, then runs the shape arithmetic, and raises
one line of ``InvalidConfig`` naming the field, as in ``conv2.stride: expected an integer from 1 to
64, got True``, or the layer and the rule it breaks.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from cnn_core import safejson
from cnn_core.errors import InvalidConfig
from cnn_core.shapes import layer_table

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu")
POOLINGS = ("max", "avg", "none")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "onecycle", "cosine")
# One-cycle warms up for a quarter of the steps, then anneals; fewer than 10 steps cannot do both (OneCycleLR
# divides by zero at 4), so such a run keeps a constant rate (cnn_core.training.optimizers, the exported script).
ONECYCLE_MIN_STEPS = 10
ONECYCLE_PCT_START = 0.25
DEVICES = ("auto", "cpu", "cuda", "mps")
# "auto": bf16 autocast on a CPU that computes bf16 natively (AVX-512 BF16, AMX or Arm BF16), fp32 elsewhere
# (on a GPU these small networks are launch-bound and fp32 is faster). bf16 needs native support (Ampere+ on
# CUDA); fp16 is for CUDA only. See cnn_core.training.loop.pick_precision.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUTO_AUGMENT_BELOW = 20_000
# Users' photos are made square by centre-crop or by padding, then resized to one of these sides: MNIST's 28,
# CIFAR's (and LeNet-5's original) 32, and two for bigger photos (cnn_core.data.photo does it).
PHOTO_FITS = ("crop", "pad")
PHOTO_SIZES = (28, 32, 48, 64)

# MNIST's pixel statistics; the model normalises its [0, 1] input with them so that
# attributions, baselines and drawings all live in plain pixel space.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

# The trainer seeds torch.Generator with seed and seed + 1. Torch takes 0 .. 2**64 - 1, but the seed is
# also shown in tables and may be stored as a signed 64-bit integer (SQLite, numpy, pandas), so seed + 1
# must stay below 2**63.
SEED_MAX = 2**63 - 2

# Upper bounds far above any network this lab trains, low enough that no number in a config can ask for an
# absurd allocation before the memory budget (cnn_core.config.budget) even looks at it.
MAX_CONV_BLOCKS = 32  # VGG-19 has 16 conv layers; twice that is no longer a LeNet-style lab network
MAX_FC_LAYERS = 16  # LeNet-5 and VGG have two or three
MAX_FC_WIDTH = 65_536  # VGG's fc layers are 4,096 wide; the budget then judges the whole weight matrix
CONV_INTEGERS = {  # ConvBlock field -> (lowest, highest)
    "out_channels": (1, 4096),  # ResNet's widest layer has 2,048 filters
    "kernel_size": (1, 64),  # the largest common filter is AlexNet's 11×11; 64 still spans a whole upload
    "stride": (1, 64),  # a stride above the filter size skips pixels; above 64 it skips whole images
    "pool_size": (1, 64),  # as the filter: LeNet pools 2×2, and 64 already pools most inputs whole
    "pool_stride": (1, 64),
}
MAX_PADDING = 64  # zeros per side; more than the largest filter adds only blank borders
MODEL_INTEGERS = {  # ModelConfig field -> (lowest, highest)
    "in_channels": (1, 16),  # grey 1, RGB 3, RGBA 4; 16 leaves room for multispectral images
    "input_size": (1, 512),  # MNIST is 28, CIFAR 32, ImageNet crops 224; a 2-core CPU stops long before 512
    "num_classes": (2, 1000),  # one class is no classifier; ImageNet has 1,000
}
MODEL_NUMBERS = {  # ModelConfig field -> (lowest, highest, brackets: "(" or ")" is open, "[" or "]" closed)
    "input_mean": (0, 1, "[]"),  # the mean of [0, 1] pixels
    "input_std": (0.001, 1, "[]"),  # below 0.001 normalising multiplies pixels by over 1,000
}
TRAIN_INTEGERS = {  # TrainConfig field -> (lowest, highest)
    "batch_size": (1, 65_536),  # the whole MNIST training set is 60,000
    "epochs": (1, 1000),  # LeNet-5 converges in 20-40; a run of 1,000 already keeps 1,001 checkpoints
    "seed": (0, SEED_MAX),
    "log_every": (1, 100_000),  # steps between "step" events; beyond that a run would almost never report
}
TRAIN_NUMBERS = {  # TrainConfig field -> (lowest, highest, brackets)
    "lr": (0, 10, "(]"),  # 0 learns nothing; above 10 every optimizer here diverges at the first step
    "momentum": (0, 1, "[)"),  # SGD momentum of 1 or more never forgets a gradient and diverges
    "weight_decay": (0, 1, "[]"),  # AdamW takes lr × weight_decay of each weight per step; 1e-4..1e-1 is usual
    "label_smoothing": (0, 1, "[)"),  # 1 makes every target uniform: nothing left to learn
    "val_fraction": (0, 0.9, "[)"),  # at least 10 % of the data stays for training
}


# What the Train page calls each setting, for messages a person reads (never config paths like conv.0.kernel_size)
BLOCK_WORDS = {
    "out_channels": "filters",
    "kernel_size": "filter size",
    "stride": "stride",
    "padding": "padding",
    "pool": "pooling",
    "pool_size": "pool size",
    "pool_stride": "pool stride",
}
SETTING_WORDS = {
    "lr": "learning rate",
    "batch_size": "batch size",
    "weight_decay": "weight decay",
    "fc": "fully connected sizes",
    "in_channels": "input channels",
    "input_size": "input size",
    "num_classes": "classes",
}


def setting_words(key: str) -> str:
    """A flattened config key as the Train page names it: ``model.conv1.stride`` → "conv1 stride",
    ``train.lr`` → "learning rate" (conv blocks numbered like layers, as ``compare.flatten_config`` does)."""
    parts = key.split(".")
    if len(parts) == 3 and parts[1].startswith("conv"):
        return f"{parts[1]} {BLOCK_WORDS.get(parts[2], parts[2].replace('_', ' '))}"
    return SETTING_WORDS.get(parts[-1], parts[-1].replace("_", " "))


@dataclass(frozen=True)
class ConvBlock:
    """One convolution (+ activation) optionally followed by a pooling layer."""

    out_channels: int = 6
    kernel_size: int = 5
    stride: int = 1
    padding: int | str = 0  # a number of zeros, "same" or "valid"
    pool: str = "max"  # "max", "avg" or "none"
    pool_size: int = 2
    pool_stride: int = 2

    def check(self, name: str) -> None:
        """InvalidConfig naming ``name.field`` for a wrong type or range; the layer for a rule between fields."""
        for key, (low, high) in CONV_INTEGERS.items():
            _integer(f"{name}.{key}", getattr(self, key), low, high)
        if not (isinstance(self.padding, str) and self.padding in ("same", "valid")):
            _integer(f"{name}.padding", self.padding, 0, MAX_PADDING, "'same' or 'valid'")
        if self.padding == "same" and self.stride != 1:
            raise InvalidConfig(f"{name}: 'same' padding needs stride 1 (PyTorch refuses it with stride {self.stride})")
        _choice(f"{name}.pool", self.pool, POOLINGS)


# The article's LeNet-5: C1 6@5x5 pad 2 -> pool -> C2 16@5x5 -> pool -> C3 120@5x5 -> FC 84 -> FC 10.
LENET5_CONV = (
    ConvBlock(out_channels=6, kernel_size=5, padding=2),
    ConvBlock(out_channels=16, kernel_size=5),
    ConvBlock(out_channels=120, kernel_size=5, pool="none"),
)


@dataclass(frozen=True)
class ModelConfig:
    """The whole description of a network; the default is the article's LeNet-5."""

    in_channels: int = 1
    input_size: int = 28
    num_classes: int = 10
    activation: str = "relu"
    conv: tuple[ConvBlock, ...] = LENET5_CONV
    fc: tuple[int, ...] = (84,)
    input_mean: float = MNIST_MEAN
    input_std: float = MNIST_STD

    def __post_init__(self) -> None:
        for key, (low, high) in MODEL_INTEGERS.items():
            _integer(f"model.{key}", getattr(self, key), low, high)
        for key, (lowest, highest, brackets) in MODEL_NUMBERS.items():
            _number(f"model.{key}", getattr(self, key), lowest, highest, brackets)
        _choice("model.activation", self.activation, ACTIVATIONS)
        object.__setattr__(self, "conv", _sequence("model.conv", self.conv, 1, MAX_CONV_BLOCKS, "conv blocks"))
        object.__setattr__(self, "fc", _sequence("model.fc", self.fc, 0, MAX_FC_LAYERS, "widths"))
        for i, block in enumerate(self.conv, start=1):
            if not isinstance(block, ConvBlock):
                raise InvalidConfig(f"conv{i}: expected a conv block, got {_shown(block)}")
            block.check(f"conv{i}")
        for i, width in enumerate(self.fc, start=1):
            _integer(f"fc{i}.width", width, 1, MAX_FC_WIDTH)

        layer_table(self)  # raises InvalidConfig naming the layer when a size breaks

    def with_pooling(self, pool: str) -> ModelConfig:
        """The same network with every pooling layer switched to ``pool`` (max/avg/none)."""
        return replace(self, conv=tuple(replace(b, pool=pool if b.pool != "none" else "none") for b in self.conv))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["conv"] = [asdict(b) for b in self.conv]
        data["fc"] = list(self.fc)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(_known_keys(cls, data, "model"))
        if isinstance(data.get("conv"), list):  # anything else is refused by __post_init__ with its name
            data["conv"] = tuple(
                ConvBlock(**_known_keys(ConvBlock, b, f"conv{i}")) for i, b in enumerate(data["conv"], 1)
            )
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. The defaults are the recipe that beats the article's on a 2-core CPU."""

    optimizer: str = "adamw"
    lr: float = 5e-3
    momentum: float = 0.9  # SGD only
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    batch_size: int = 128
    epochs: int = 40
    seed: int = 0
    # Small random shifts, rotations and scaling (batched tensor ops). "auto" turns them on for small
    # training sets (< AUTO_AUGMENT_BELOW images), where they are worth +1 point on MNIST-5k, and off
    # for large ones, where a short run learns faster from the plain images.
    augment: bool | str = "auto"
    label_smoothing: float = 0.1  # measured: +0.3 points on the official test set from the 5k sample
    val_fraction: float = 0.1  # stratified part of the training set held out for validation
    device: str = "auto"
    log_every: int = 20  # steps between "step" events
    # "auto" is bf16 autocast where the device computes bf16 natively: faster than fp32 for LeNet-5 on such a
    # CPU with no loss of accuracy (benchmarks/bench_recipes.py measures both).
    # Configs stored before this field have ``amp`` (mixed precision on CUDA only) instead; from_dict reads
    # it as true -> "auto", false -> "fp32".
    precision: str = "auto"

    def __post_init__(self) -> None:
        _choice("train.optimizer", self.optimizer, OPTIMIZERS)
        _choice("train.schedule", self.schedule, SCHEDULES)
        _choice("train.device", self.device, DEVICES)
        _choice("train.precision", self.precision, PRECISIONS)
        for key, (low, high) in TRAIN_INTEGERS.items():
            _integer(f"train.{key}", getattr(self, key), low, high)
        for key, (lowest, highest, brackets) in TRAIN_NUMBERS.items():
            _number(f"train.{key}", getattr(self, key), lowest, highest, brackets)
        if not (isinstance(self.augment, bool) or (isinstance(self.augment, str) and self.augment == "auto")):
            raise InvalidConfig(f"train.augment: expected true, false or 'auto', got {_shown(self.augment)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from JSON; the ``amp`` key of configs stored by older versions still loads (and is checked)."""
        data = dict(_known_keys(cls, data, "train", legacy=("amp",)))
        if "amp" in data:
            amp = data.pop("amp")
            if not isinstance(amp, bool):
                raise InvalidConfig(f"train.amp: expected true or false, got {_shown(amp)}")
            data.setdefault("precision", "auto" if amp else "fp32")
        return cls(**data)


@dataclass(frozen=True)
class RunConfig:
    """A model and the way to train it: what a run is made of and what is saved with it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig):
            raise InvalidConfig(f"model: expected a ModelConfig, got {_shown(self.model)}")
        if not isinstance(self.train, TrainConfig):
            raise InvalidConfig(f"train: expected a TrainConfig, got {_shown(self.train)}")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "train": self.train.to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        if not isinstance(data, dict):
            raise InvalidConfig(f"config: expected a JSON object with 'model' and/or 'train', got {_shown(data)}")
        unknown = set(data) - {"model", "train"}
        if unknown:
            raise InvalidConfig(
                f"config: unknown section(s) {', '.join(sorted(unknown))}; expected 'model' and 'train'"
            )
        return cls(
            model=ModelConfig.from_dict(data.get("model", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
        )

    @classmethod
    def from_json(cls, text: str | bytes, what: str = "config") -> RunConfig:
        """Parse untrusted JSON text (bounded size and depth, see cnn_core.safejson) into a validated config."""
        return cls.from_dict(safejson.loads(text, what))  # safejson turns every failure into InvalidConfig


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read a run config JSON file; missing sections or keys take the defaults."""
    where = f"config {os.fspath(path)!r}"
    try:
        info = os.stat(path)  # before opening: a FIFO or a device would block open() or read() forever
        if not stat.S_ISREG(info.st_mode):
            raise InvalidConfig(f"{where} is {'a folder' if stat.S_ISDIR(info.st_mode) else 'not a regular file'}")
        if info.st_size > safejson.MAX_JSON_BYTES:
            raise InvalidConfig(
                f"{where} is {info.st_size:,} bytes of JSON; at most {safejson.MAX_JSON_BYTES:,} are accepted"
            )
        with open(path, "rb") as fh:
            text = fh.read(safejson.MAX_JSON_BYTES + 1)  # in case it grew since: still never a 5 GB read
    except OSError as err:
        raise InvalidConfig(f"cannot read {where}: {err.strerror}") from None
    return RunConfig.from_json(text, where)


def _known_keys(cls: type, data: Any, where: str, legacy: tuple[str, ...] = ()) -> dict[str, Any]:
    """``data`` if it is a dict whose keys are all fields of ``cls`` (or ``legacy`` keys the caller maps)."""
    if not isinstance(data, dict):
        raise InvalidConfig(f"{where}: expected a JSON object, got {_shown(data)}")
    names = [f.name for f in fields(cls)]
    unknown = set(data) - set(names) - set(legacy)
    if unknown:
        raise InvalidConfig(
            f"{where}: unknown key(s) {', '.join(sorted(_key(k) for k in unknown))}; expected {', '.join(names)}"
        )
    return data


def _key(key: Any) -> str:
    """A key as a message shows it: plain when it is a plain name, else its (short) repr (no raw newline or ESC)."""
    text = str(key)
    return text if text.isidentifier() and len(text) <= 40 else _shown(key)


def _shown(value: Any) -> str:
    """A value as an error message shows it: its repr, cut short so the message stays one short line."""
    if isinstance(value, int) and value.bit_length() > 128:  # repr of a 5,000-digit int raises ValueError
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(where: str, value: Any, low: int, high: int, alternatives: str = "") -> None:
    """A Python int (not a bool) from low to high inclusive."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        also = f", {alternatives}" if alternatives else ""
        raise InvalidConfig(f"{where}: expected an integer from {low:,} to {high:,}{also}, got {_shown(value)}")


def _number(where: str, value: Any, low: float, high: float, brackets: str) -> None:
    """An int or float (not a bool) inside the interval; NaN and ±inf fail every comparison or the bound."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (low < value if brackets[0] == "(" else low <= value)
    ok = ok and (value < high if brackets[1] == ")" else value <= high)
    if not ok:
        interval = f"{brackets[0]}{low:g}, {high:g}{brackets[1]}"
        raise InvalidConfig(f"{where}: expected a number in {interval}, got {_shown(value)}")


def _choice(where: str, value: Any, options: tuple[str, ...]) -> None:
    if not (isinstance(value, str) and value in options):
        raise InvalidConfig(f"{where}: expected one of {', '.join(options)}, got {_shown(value)}")


def _sequence(where: str, value: Any, low: int, high: int, what: str) -> tuple[Any, ...]:
    """A list or tuple of low..high items, as a tuple (a string or a dict is refused, not iterated)."""
    if not isinstance(value, (list, tuple)) or not low <= len(value) <= high:
        raise InvalidConfig(f"{where}: expected a list of {low} to {high} {what}, got {_shown(value)}")
    return tuple(value)
