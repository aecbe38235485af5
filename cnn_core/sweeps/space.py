"""From a sweep's space to concrete run configs: dotted paths, grid/random expansion, validation up front.

A path walks the run config's JSON form: ``model.conv.0.kernel_size`` is the first conv block's filter size,
``model.conv.*.pool`` every block's pooling. ``*`` on ``pool`` switches only the blocks that pool, the way
``--pooling`` does (LeNet-5's third conv block has none, and adding one would change the network).
Every configuration goes through ``RunConfig.from_dict``, so an invalid one is skipped with the same reason
the Train page would give.
"""

from __future__ import annotations

import copy
import itertools
import random
from dataclasses import dataclass
from typing import Any

from cnn_core.config import RunConfig
from cnn_core.config.sweep import Invalid, Param, SweepConfig, SweepRefused, parameter_words
from cnn_core.errors import InvalidConfig


@dataclass(frozen=True)
class Trial:
    """One configuration to train: the values of the varied paths, its seed and the run config they make."""

    params: dict[str, Any]
    seed: int
    run: RunConfig


@dataclass(frozen=True)
class Plan:
    trials: list[Trial]
    invalid: list[Invalid]  # one entry per configuration (not per seed)


def apply(base: RunConfig, params: dict[str, Any], seed: int) -> RunConfig:
    """The run config with every path set (and the seed); ``InvalidConfig`` with the rule that breaks."""
    data = copy.deepcopy(base.to_dict())
    for path, value in params.items():
        _set(data, path.split("."), value)
    data["train"]["seed"] = seed
    return RunConfig.from_dict(data)


def _set(node: Any, parts: list[str], value: Any) -> None:
    head, rest = parts[0], parts[1:]
    keys: list[int | str]
    if head == "*":  # every block; for ``pool`` only those that pool
        keys = [i for i, n in enumerate(node) if not (rest == ["pool"] and n.get("pool") == "none")]
    else:
        keys = [int(head) if isinstance(node, list) else head]
    for key in keys:
        if rest:
            _set(node[key], rest, value)
        else:
            node[key] = value


def configurations(sweep: SweepConfig) -> list[dict[str, Any]]:
    """The parameter sets of a grid or random search (before seeds): grid values crossed, the rest sampled."""
    if sweep.search == "grid":
        return _product([(p.path, p.values) for p in sweep.space])
    rng = random.Random(sweep.search_seed)
    grid = _product([(p.path, p.values) for p in sweep.space if p.kind == "grid"])
    sampled = [p for p in sweep.space if p.kind != "grid"]
    return [{**g, **{p.path: _sample(p, rng) for p in sampled}} for g in grid for _ in range(sweep.num_samples)]


def plan(sweep: SweepConfig) -> Plan:
    """Every trial of a grid or random sweep, validated; ``SweepRefused`` when none is valid.

    An Optuna search samples as it learns, so its trials are not known in advance: the plan is empty and
    each sampled configuration is checked when it is drawn (an invalid one is reported, not trained)."""
    if sweep.search == "optuna":
        return Plan([], [])
    trials, invalid = [], []
    for params in configurations(sweep):
        try:
            runs = [apply(sweep.base, params, seed) for seed in sweep.seeds]
        except InvalidConfig as err:
            invalid.append(Invalid(params, str(err)))
            continue
        trials += [Trial(params, seed, run) for seed, run in zip(sweep.seeds, runs, strict=True)]
    if not trials:
        why = f": {invalid[0].reason}" if invalid else ""
        raise SweepRefused(f"every configuration of the space is invalid ({len(invalid)} of them){why}")
    return Plan(trials, invalid)


def tune_space(sweep: SweepConfig) -> dict[str, Any]:
    """The space in Ray Tune's own terms, for the Optuna searcher (a grid becomes a categorical choice)."""
    from ray import tune

    def dist(p: Param) -> Any:  # a Ray Tune search domain
        if p.kind in ("grid", "choice"):
            return tune.choice(list(p.values))
        if p.kind == "uniform":
            return tune.uniform(*p.values)
        if p.kind == "loguniform":
            return tune.loguniform(*p.values)
        return tune.randint(p.values[0], p.values[1] + 1)  # randint's upper bound is exclusive

    return {p.path: dist(p) for p in sweep.space}


def trial_name(params: dict[str, Any], seed: int) -> str:
    """A run name that says what differs, in the Train page's words: ``conv1 filter size 3 · pooling avg · seed 1``."""
    shown = [f"{parameter_words(path)} {_short(v)}" for path, v in params.items()]
    return " · ".join([*shown, f"seed {seed}"])[:100]


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _product(pairs: list[tuple[str, tuple[Any, ...]]]) -> list[dict[str, Any]]:
    paths = [path for path, _ in pairs]
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*(values for _, values in pairs))]


def _sample(p: Param, rng: random.Random) -> Any:
    if p.kind == "choice":
        return rng.choice(p.values)
    if p.kind == "uniform":
        return rng.uniform(*p.values)
    if p.kind == "loguniform":
        import math

        lo, hi = (math.log(v) for v in p.values)
        return math.exp(rng.uniform(lo, hi))
    return rng.randint(*p.values)
