"""A sweep as one frozen, validated ``SweepConfig`` with a JSON form.

A sweep is a base run config, a space of dotted paths into it (``model.conv.0.kernel_size``,
``model.conv.*.pool``, ``train.lr``) each with a distribution, and a list of seeds crossed with every
sampled configuration so that results come as mean ± std. Like ``RunConfig``, an invalid sweep cannot be
built: the error names the field and the rule (``space.train.lr: loguniform needs 0 < lo < hi``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnn_core import safejson
from cnn_core.config import BLOCK_WORDS, SEED_MAX, RunConfig, setting_words
from cnn_core.errors import InvalidConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

SEARCHES = ("grid", "random", "optuna")  # optuna: Tree-structured Parzen Estimator through Ray Tune
DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "int")
DISCRETE = ("grid", "choice")  # the ones a grid search can enumerate
MAX_TRIALS = 2000  # a sweep past this is a typo (a grid of 10 values on 4 paths is already 10,000)
MAX_VALUES = 100  # per grid/choice list
MAX_SEEDS = 100
MAX_CONCURRENT = 1000


class SweepRefused(InvalidConfig):
    """A sweep spec that cannot run: unknown path, no trials, too many, or every configuration invalid."""


def parameter_words(path: str) -> str:
    """How the Train page names what ``path`` sets: ``model.conv.0.kernel_size`` → "conv1 filter size",
    ``model.conv.*.pool`` → "pooling (every block)", ``model.fc.0`` → "fc1 width", ``train.lr`` → "learning rate"."""
    parts = path.split(".")
    if parts[:2] == ["model", "conv"] and len(parts) == 4:
        field = BLOCK_WORDS.get(parts[3], parts[3].replace("_", " "))
        return f"{field} (every block)" if parts[2] == "*" else f"conv{int(parts[2]) + 1} {field}"
    if parts[:2] == ["model", "fc"] and len(parts) == 3 and parts[2].isdigit():
        return f"fc{int(parts[2]) + 1} width"
    return setting_words(path)


@dataclass(frozen=True)
class Invalid:
    """A configuration of the space that breaks a rule, and which rule (shown beside the sweep's trials)."""

    params: dict[str, Any]
    reason: str


def check_path(base: RunConfig, path: str) -> None:
    """``SweepRefused`` naming the path when it does not lead to a field of the run config."""
    node: Any = base.to_dict()
    parts = path.split(".")
    for i, part in enumerate(parts):
        where = ".".join(parts[: i + 1])
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part == "*" and node:
            node = node[0]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SweepRefused(f"unknown path {path!r}: the run config has no {where!r}")
    if isinstance(node, (dict, list)) and not (parts[-1] == "fc"):
        raise SweepRefused(f"path {path!r} names a whole section; name one of its fields")
    if path == "train.seed":
        raise SweepRefused("path 'train.seed' is set by the sweep's seeds list; vary the seeds there")


@dataclass(frozen=True)
class Param:
    """One varied parameter: a dotted path into the run config and its distribution."""

    path: str
    kind: str  # one of DISTRIBUTIONS
    values: tuple[Any, ...]  # the list for grid/choice, (lo, hi) otherwise

    def __post_init__(self) -> None:
        where = f"space.{self.path}"
        if self.kind not in DISTRIBUTIONS:
            raise InvalidConfig(f"{where}: expected one of {', '.join(DISTRIBUTIONS)}, got {self.kind!r}")
        if not isinstance(self.values, (list, tuple)):
            raise InvalidConfig(f"{where}: {self.kind} takes a list, got {self.values!r}"[:200])
        object.__setattr__(self, "values", tuple(self.values))
        if self.kind in DISCRETE:
            if not 1 <= len(self.values) <= MAX_VALUES:
                raise SweepRefused(f"{where}: {self.kind} needs 1 to {MAX_VALUES} values, got {len(self.values)}")
            return
        if len(self.values) != 2 or not all(_is_number(v) for v in self.values):
            raise InvalidConfig(f"{where}: {self.kind} takes [lo, hi], got {list(self.values)!r}"[:200])
        lo, hi = self.values
        if not lo < hi or (self.kind == "loguniform" and lo <= 0):
            rule = "0 < lo < hi" if self.kind == "loguniform" else "lo < hi"
            raise InvalidConfig(f"{where}: {self.kind} needs {rule}, got [{lo:g}, {hi:g}]")
        if self.kind == "int" and not all(isinstance(v, int) for v in self.values):
            raise InvalidConfig(f"{where}: int takes two integers, got {list(self.values)!r}")

    @property
    def label(self) -> str:
        """The Train page's name for it: "conv1 filter size" rather than ``model.conv.0.kernel_size``."""
        return parameter_words(self.path)

    def to_json(self) -> dict[str, list[Any]]:
        return {self.kind: list(self.values)}


@dataclass(frozen=True)
class EarlyStop:
    """Successive halving (Ray Tune's ASHA) on validation accuracy: after ``grace_epochs``, at each rung only
    the best 1/``reduction_factor`` of the trials go on."""

    grace_epochs: int = 1
    reduction_factor: int = 2

    def __post_init__(self) -> None:
        _integer("early_stop.grace_epochs", self.grace_epochs, 1, 1000)
        _integer("early_stop.reduction_factor", self.reduction_factor, 2, 100)


@dataclass(frozen=True)
class Resources:
    """What one trial holds: CPUs and a (possibly fractional) GPU, as Ray counts them."""

    cpu: float = 1.0
    gpu: float = 0.0

    def __post_init__(self) -> None:
        if not _is_number(self.cpu) or not 0 < self.cpu <= 1024:
            raise InvalidConfig(f"resources.cpu: expected a number in (0, 1024], got {self.cpu!r}")
        if not _is_number(self.gpu) or not 0 <= self.gpu <= 64:
            raise InvalidConfig(f"resources.gpu: expected a number in [0, 64], got {self.gpu!r}")
        if self.gpu > 1 and self.gpu != int(self.gpu):
            raise InvalidConfig(f"resources.gpu: above 1, GPUs come whole; got {self.gpu:g}")


@dataclass(frozen=True)
class SweepConfig:
    """A whole sweep: what to vary, how to search, how to stop early, and what each trial may use."""

    space: tuple[Param, ...]
    base: RunConfig = field(default_factory=RunConfig)
    dataset: str = "mnist"
    data_dir: str | None = None
    name: str | None = None
    seeds: tuple[int, ...] = (0,)
    search: str = "grid"
    num_samples: int = 10  # random/optuna: configurations sampled (each crossed with every seed)
    early_stop: EarlyStop | None = None
    resources: Resources = field(default_factory=Resources)
    max_concurrent: int = 0  # 0: as many as the cluster's resources allow
    search_seed: int = 0  # random and optuna sampling are reproducible

    def __post_init__(self) -> None:
        if not isinstance(self.base, RunConfig):
            raise InvalidConfig(f"base: expected a run config, got {self.base!r}"[:200])
        if not isinstance(self.dataset, str) or not self.dataset:
            raise InvalidConfig("dataset: expected a dataset name")
        if self.name is not None and not (isinstance(self.name, str) and len(self.name) <= 100):
            raise InvalidConfig("name: expected a text of at most 100 characters")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise InvalidConfig("data_dir: expected a folder path")
        if self.search not in SEARCHES:
            raise InvalidConfig(f"search: expected one of {', '.join(SEARCHES)}, got {self.search!r}"[:200])
        object.__setattr__(self, "space", tuple(self.space))
        object.__setattr__(self, "seeds", tuple(self.seeds) if isinstance(self.seeds, (list, tuple)) else self.seeds)
        if not isinstance(self.seeds, tuple) or not 1 <= len(self.seeds) <= MAX_SEEDS:
            raise InvalidConfig(f"seeds: expected a list of 1 to {MAX_SEEDS} seeds")
        for seed in self.seeds:
            _integer("seeds", seed, 0, SEED_MAX)
        if len(set(self.seeds)) != len(self.seeds):
            raise InvalidConfig("seeds: a seed is listed twice")
        _integer("num_samples", self.num_samples, 1, MAX_TRIALS)
        _integer("max_concurrent", self.max_concurrent, 0, MAX_CONCURRENT)
        _integer("search_seed", self.search_seed, 0, 2**32 - 1)
        if not self.space:
            raise SweepRefused("the space is empty: vary at least one parameter (a path with its values)")
        if len({p.path for p in self.space}) != len(self.space):
            raise InvalidConfig("space: a path is listed twice")
        if self.search == "grid":
            for p in self.space:
                if p.kind not in DISCRETE:
                    raise InvalidConfig(f"space.{p.path}: a grid search needs grid or choice values, not {p.kind}")
        for p in self.space:
            check_path(self.base, p.path)
        if self.trial_count > MAX_TRIALS:
            raise SweepRefused(f"the space yields {self.trial_count:,} trials; at most {MAX_TRIALS:,} are allowed")

    @property
    def trial_count(self) -> int:
        """Trials this sweep will run (invalid configurations included; ``plan`` tells them apart)."""
        if self.search == "grid":
            return math.prod(len(p.values) for p in self.space) * len(self.seeds)
        grid = math.prod(len(p.values) for p in self.space if p.kind == "grid") if self.search == "random" else 1
        return grid * self.num_samples * len(self.seeds)

    @property
    def label(self) -> str:
        return self.name or ", ".join(p.label for p in self.space)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base.to_dict(),
            "dataset": self.dataset,
            "data_dir": self.data_dir,
            "space": {p.path: p.to_json() for p in self.space},
            "seeds": list(self.seeds),
            "search": self.search,
            "num_samples": self.num_samples,
            "early_stop": None if self.early_stop is None else vars(self.early_stop).copy(),
            "resources": vars(self.resources).copy(),
            "max_concurrent": self.max_concurrent,
            "search_seed": self.search_seed,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> SweepConfig:
        if not isinstance(data, dict):
            raise InvalidConfig("sweep: expected a JSON object with at least 'space'")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidConfig(f"sweep: unknown key(s) {', '.join(sorted(map(str, unknown)))}"[:200])
        data = dict(data)
        data["space"] = _space(data.get("space"))
        if "base" in data:
            data["base"] = RunConfig.from_dict(data["base"])
        if data.get("early_stop") is not None:
            data["early_stop"] = EarlyStop(**_object("early_stop", data["early_stop"], EarlyStop))
        if "resources" in data:
            data["resources"] = Resources(**_object("resources", data["resources"], Resources))
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes, what: str = "sweep spec") -> SweepConfig:
        return cls.from_dict(safejson.loads(text, what))  # safejson turns every failure into InvalidConfig


def load_sweep(path: str | os.PathLike[str]) -> SweepConfig:
    """Read a sweep spec JSON file."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(safejson.MAX_JSON_BYTES + 1)
    except OSError as err:
        raise InvalidConfig(f"cannot read sweep spec {os.fspath(path)!r}: {err.strerror}") from None
    return SweepConfig.from_json(text, f"sweep spec {os.fspath(path)!r}")


def _space(data: Any) -> tuple[Param, ...]:
    if not isinstance(data, dict):
        raise InvalidConfig('space: expected an object of path: {"grid": [...]} (or choice/uniform/loguniform/int)')
    params = []
    for path, dist in data.items():
        if not isinstance(dist, dict) or len(dist) != 1:
            raise InvalidConfig(f'space.{path}: expected one distribution, as {{"grid": [...]}}'[:200])
        ((kind, values),) = dist.items()
        params.append(Param(str(path), kind, values))
    return tuple(params)


def _object(where: str, data: Any, cls: type[DataclassInstance]) -> dict[str, Any]:
    if not isinstance(data, dict) or set(data) - set(cls.__dataclass_fields__):
        raise InvalidConfig(f"{where}: expected an object with {', '.join(cls.__dataclass_fields__)}")
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(where: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidConfig(f"{where}: expected an integer from {low:,} to {high:,}, got {value!r}"[:200])
