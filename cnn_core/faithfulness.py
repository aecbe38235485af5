"""How far to trust an explanation: scores kept apart from the methods that make them.

Four questions, one function each, all seeded so the same input gets the same scores, and one axiom:

- ``infidelity`` (Captum): do the attributions predict how the score changes when a square of the
  digit is blacked out? Lower is better.
- ``sensitivity`` (Captum's ``sensitivity_max``): does the map change a lot when the input barely
  changes? Lower is better.
- ``deletion_curve``: remove the most-attributed pixels first; the class probability should fall
  fast, faster than removing pixels in a random order. Smaller area is better.
- ``randomisation_check`` (Adebayo et al., 2018, "Sanity Checks for Saliency Maps"): the same method
  on the same architecture with re-initialised weights. A map that barely changes (rank
  correlation near 1) shows the input's edges, not what the model learned. Like the paper, both
  the signed maps and their absolute values are compared: on LeNet-5, Integrated Gradients and
  DeepLift with a black baseline correlate ~0.98 in absolute value (they are x·something, so every
  black pixel is 0 in both maps: they show where the ink is) but ~0.05 signed (which strokes count
  for or against the class is what the training changed).

``report`` scores every map of a page at once, and ``summary`` says in plain words which to trust.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients
from captum.metrics import infidelity as captum_infidelity
from captum.metrics import sensitivity_max
from torch import nn

from cnn_core import explain
from cnn_core.explain import RememberedForward
from cnn_core.heatmap import as_map
from cnn_core.model import build_model

SEED = 0
INFIDELITY_SAMPLES = 64  # perturbed copies, in one batch
INFIDELITY_SQUARE = 7  # px: a quarter of the digit's width, about one stroke segment
SENSITIVITY_SAMPLES = 8
SENSITIVITY_RADIUS = 0.02  # Captum's default L∞ radius: 2 % of the pixel range, invisible to a person
DELETION_STEPS = 28  # 28 pixels (one image row's worth) removed per step on a 28×28 digit
RANDOM_INIT_SEED = 1  # the re-initialised network of the randomisation check
# Adebayo et al. judge the similarity by eye; on the bundled LeNet-5s the methods that are known to pass
# (Integrated Gradients, DeepLift, occlusion, saliency) stay under 0.4 and Guided Backprop and SmoothGrad,
# which mostly trace edges, reach 0.5-0.66: a map whose |ρ| is under 0.5 "changed when the weights did".
RANDOMISATION_PASS = 0.5
FLAT = "one of the two maps (the trained or the untrained network's) is blank, so there is no ranking to compare"
SCORE_HELP = {  # what each column of ``report``'s rows means, in a sentence a page can show on hover
    "infidelity": "Does the map predict how the class score changes when a 7×7 square of the digit is blacked out? "
    "Lower is better.",
    "sensitivity": "How much the map changes when every pixel moves by an invisible 2 %. Lower is steadier.",
    "deletion area": "Black out the pixels the map ranks highest first and watch the class probability: the area "
    "under that curve. Lower: the map found the pixels that matter (beat the dashed random order).",
    "random-model ρ": "Rank correlation with the same method's map on an untrained copy of the network. Near 0: "
    "the map shows what the model learned; near 1: it only traces the digit (Adebayo et al., 2018). A dash: " + FLAT,
    "random-model ρ |map|": "The same on absolute values (where, not which way). Integrated Gradients and DeepLift "
    "from a black image score about 1: they are zero wherever there is no ink. A dash: " + FLAT,
}


@dataclass(frozen=True, eq=False)
class DeletionCurve:
    """Probability of the target class as a growing fraction of pixels is set to black."""

    fractions: np.ndarray  # 0 … 1
    probabilities: np.ndarray
    area: float  # under the curve (trapezoid), 0 … 1: smaller means the map found what matters


@dataclass(frozen=True)
class Completeness:
    """How well a map from a baseline adds up: its sum should equal f(x) − f(baseline) for the target logit."""

    total: float  # the sum of the map
    change: float  # f(x) − f(baseline): the target logit's change from the baseline to the digit
    delta: float  # Captum's convergence delta, total − change: 0 for a complete map

    @property
    def relative(self) -> float:
        """|delta| as a fraction of |change| (what the measurements in ``cnn_core.explain`` quote)."""
        return abs(self.delta) / max(abs(self.change), 1e-12)


@dataclass(frozen=True, eq=False)
class Faithfulness:
    method: str
    infidelity: float
    sensitivity: float
    deletion: DeletionCurve
    randomisation: float  # Spearman correlation of the maps of the trained and a re-initialised model
    randomisation_abs: float  # the same on |map|

    def row(self) -> dict[str, Any]:
        return {
            "method": _title(self.method),
            "infidelity": self.infidelity,
            "sensitivity": self.sensitivity,
            "deletion area": self.deletion.area,
            "random-model ρ": self.randomisation,
            "random-model ρ |map|": self.randomisation_abs,
        }


def _remembered(model: nn.Module, memory: dict | None, name: str) -> nn.Module | RememberedForward:
    return model if memory is None else RememberedForward(model, memory, name)


def infidelity(
    model: nn.Module | RememberedForward,
    x: torch.Tensor,
    attribution: torch.Tensor,
    target: int,
    samples: int = INFIDELITY_SAMPLES,
    square: int = INFIDELITY_SQUARE,
) -> float:
    """Captum's infidelity E[(Iᵀ·attr − (f(x) − f(x − I)))²] on the logit, I = a random square of x removed.

    Square removal is Yeh et al.'s (2019) perturbation for images. Measured on the bundled
    LeNet-5: with Gaussian noise on every pixel, a map of pure noise scored as well as Integrated
    Gradients; with 7×7 squares, noise scores 3-4× worse than every real method. ``normalize=True``
    rescales each map optimally first, so maps that differ only in overall size compare fairly.
    """
    generator = torch.Generator().manual_seed(SEED)

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        removed = inputs * _random_squares(inputs.shape, square, generator).to(inputs)
        return removed, inputs - removed

    with torch.no_grad():
        value = captum_infidelity(
            model, perturb, x, attribution, target=target, n_perturb_samples=samples, normalize=True
        )
    return float(value[0])


def _random_squares(shape: torch.Size, side: int, generator: torch.Generator) -> torch.Tensor:
    """A 0/1 mask per image with one side×side square of ones at a random place."""
    n, _, height, width = shape
    top = torch.randint(0, height - side + 1, (n, 1, 1, 1), generator=generator)
    left = torch.randint(0, width - side + 1, (n, 1, 1, 1), generator=generator)
    rows = torch.arange(height).view(1, 1, -1, 1)
    cols = torch.arange(width).view(1, 1, 1, -1)
    return ((rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)).float()


def sensitivity(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: int,
    options: dict[str, Any] | None = None,
    samples: int = SENSITIVITY_SAMPLES,
    radius: float = SENSITIVITY_RADIUS,
    attribution: torch.Tensor | None = None,
    memory: dict | None = None,
    private: nn.Module | None = None,
) -> float:
    """Captum's sensitivity_max: the largest relative change of the map under tiny uniform noise.

    ``attribution``, the map of ``x`` already made with the same options, saves making it again;
    ``memory`` (see ``RememberedForward``) keeps a forward-only method's passes for the next class;
    ``private``, a ``explain.private_copy`` of ``model`` made once for several methods, saves copying it.
    """
    private = private if private is not None else explain.private_copy(model)
    if method in explain.FORWARD_ONLY:
        private = _remembered(private, memory, "copy")  # the private copy runs channels-last: not "model"
    generator = torch.Generator().manual_seed(SEED)

    def explanation(inputs: torch.Tensor | tuple[torch.Tensor], target: Any) -> torch.Tensor:
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs  # Captum passes a 1-tuple at first
        if inputs is x and attribution is not None:  # Captum's first call: the unperturbed map
            return torch.as_tensor(attribution).to(x)
        return explain.run_method(method, private, inputs, target, options or {})

    def perturb(inputs: torch.Tensor, radius: float) -> torch.Tensor:
        return inputs + ((torch.rand(inputs.shape, generator=generator) * 2 - 1) * radius).to(inputs)

    value = sensitivity_max(explanation, x, perturb, perturb_radius=radius, n_perturb_samples=samples, target=target)
    return float(value[0])


@torch.no_grad()
def deletion_curve(
    model: nn.Module | RememberedForward,
    x: torch.Tensor,
    target: int,
    attribution: torch.Tensor | None = None,
    steps: int = DELETION_STEPS,
) -> DeletionCurve:
    """Set pixels to black in order of attribution, highest first (a random order when None).

    Every step is one image of a single batch, so the whole curve costs one forward pass.
    """
    height, width = x.shape[-2:]
    pixels = height * width
    if attribution is None:
        order = np.random.default_rng(SEED).permutation(pixels)
    else:
        order = np.argsort(-as_map(attribution).ravel(), kind="stable")
    counts = np.linspace(0, pixels, steps + 1).round().astype(int)
    keep = torch.ones(len(counts), pixels)
    for i, count in enumerate(counts):
        keep[i, torch.as_tensor(order[:count])] = 0.0
    batch = x[:1] * keep.view(len(counts), 1, height, width).to(x)
    probabilities = torch.softmax(model(batch).float(), dim=1)[:, target].cpu().numpy()
    fractions = counts / pixels
    return DeletionCurve(fractions, probabilities, float(np.trapezoid(probabilities, fractions)))


def completeness(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: int,
    attribution: torch.Tensor,
    options: dict[str, Any] | None = None,
) -> Completeness:
    """Captum's convergence delta of a map made from a baseline (the method's "baseline" option).

    For Integrated Gradients it is the error of the path integral: it shrinks as ``n_steps`` grows.
    ``compute_convergence_delta`` (the same for every Captum gradient method) is what
    ``attribute(..., return_convergence_delta=True)`` calls: called on the map already made, it saves
    running the method a second time.
    """
    options = {**explain.default_options(method, model), **(options or {})}
    if "baseline" not in options:
        raise ValueError(f"{_title(method)} does not start from a baseline: completeness does not apply")
    x, attribution = x[:1].detach(), torch.as_tensor(attribution).to(x)
    baseline = explain.make_baseline(x, options["baseline"])
    delta = float(IntegratedGradients(model).compute_convergence_delta(attribution, baseline, x, target=target)[0])
    total = float(attribution.sum())
    return Completeness(total, total - delta, delta)


def completeness_all(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    attributions: dict[str, torch.Tensor],
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Completeness]:
    """``completeness`` of every map in ``attributions`` whose method starts from a baseline."""
    options = options or {}
    return {
        name: completeness(model, x, name, target, attribution, options.get(name))
        for name, attribution in attributions.items()
        if any(o.name == "baseline" for o in explain.METHODS[name].options)
    }


def rank_correlation(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Spearman's rank correlation (ties get their average rank); NaN when a map is constant."""
    ra, rb = _ranks(as_map(a).ravel()), _ranks(as_map(b).ravel())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def _ranks(values: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (starts + (counts - 1) / 2.0)[inverse]  # the mean of the ranks a tied group spans


def randomised_copy(model: nn.Module, seed: int = RANDOM_INIT_SEED) -> nn.Module:
    """The same architecture with freshly initialised weights, in eval mode."""
    return build_model(model.config, seed=seed).to(next(model.parameters()).device).eval()


def randomisation_check(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: int,
    options: dict[str, Any] | None = None,
    attribution: torch.Tensor | None = None,
    memory: dict | None = None,
    random_private: nn.Module | None = None,
) -> tuple[float, float]:
    """Rank correlations (signed maps, |maps|) between the trained and a re-initialised model,
    same method, same input, same class (``random_private``: a private copy of ``randomised_copy``
    made once for several methods)."""
    options = options or {}
    trained = attribution if attribution is not None else explain.attribute(method, model, x, target, **options)
    random_model = random_private if random_private is not None else explain.private_copy(randomised_copy(model))
    if method in explain.FORWARD_ONLY:
        random_model = _remembered(random_model, memory, "random")
    random = explain.run_method(method, random_model, x, target, options)
    trained, random = as_map(trained), as_map(random)
    return rank_correlation(trained, random), rank_correlation(np.abs(trained), np.abs(random))


def score(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: int,
    options: dict[str, Any] | None = None,
    attribution: torch.Tensor | None = None,
    memory: dict | None = None,
    copies: tuple[nn.Module, nn.Module] | None = None,
) -> Faithfulness:
    """All four scores of one method's map for one input and target. ``memory``: see ``RememberedForward``;
    ``copies``: private copies of the model and of its re-initialised twin, made once for several methods
    (they run one after another, and a scoring run would otherwise copy a model 17 times)."""
    options = options or {}
    private, random_private = copies or (explain.private_copy(model), explain.private_copy(randomised_copy(model)))
    if attribution is None:
        attribution = explain.run_method(method, private, x, target, options)
    signed, absolute = randomisation_check(model, x, method, target, options, attribution, memory, random_private)
    forward = _remembered(model, memory, "model")
    return Faithfulness(
        method=method,
        infidelity=infidelity(forward, x, attribution, target),
        sensitivity=sensitivity(
            model, x, method, target, options, attribution=attribution, memory=memory, private=private
        ),
        deletion=deletion_curve(forward, x, target, attribution),
        randomisation=signed,
        randomisation_abs=absolute,
    )


def score_all(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    attributions: dict[str, torch.Tensor],
    options: dict[str, dict[str, Any]] | None = None,
    memory: dict | None = None,
) -> list[Faithfulness]:
    """``score`` for every map in ``attributions`` (method name -> map), in that order."""
    options = options or {}
    copies = explain.private_copy(model), explain.private_copy(randomised_copy(model))
    return [
        score(model, x, name, target, options.get(name, {}), attribution, memory, copies)
        for name, attribution in attributions.items()
    ]


def deletion_frame(scores: list[Faithfulness], baseline: DeletionCurve | None = None) -> pd.DataFrame:
    """Long-form rows (method, fraction removed, probability) of the deletion curves, for one line chart;
    ``baseline`` (the random order) is added as "random order"."""
    curves = [(_title(s.method), s.deletion) for s in scores] + ([("random order", baseline)] if baseline else [])
    return pd.concat(
        [
            pd.DataFrame({"method": name, "fraction removed": c.fractions, "probability": c.probabilities})
            for name, c in curves
        ],
        ignore_index=True,
    )


def report(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    attributions: dict[str, torch.Tensor],
    options: dict[str, dict[str, Any]] | None = None,
    memory: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the Explain page shows: a row of scores per method, and every deletion curve next to the
    random order's (the curve to beat). ``memory``: see ``RememberedForward``."""
    scores = score_all(model, x, target, attributions, options, memory)
    rows = pd.DataFrame([s.row() for s in scores])
    return rows, deletion_frame(scores, deletion_curve(_remembered(model, memory, "model"), x, target))


def summary(rows: pd.DataFrame, class_name: str) -> str:
    """``report``'s rows in one plain paragraph: which maps pass the randomisation check, which of those
    finds the pixels that matter best (deletion area), and where to start. Empty for no rows."""
    if rows.empty:
        return ""
    rho = rows["random-model ρ"].abs()
    passed, failed, blank = rows[rho < RANDOMISATION_PASS], rows[rho >= RANDOMISATION_PASS], rows[rho.isna()]
    if len(passed):
        parts = [
            _said_of(
                passed,
                "passes the sanity check: its map changes when the network's weights are scrambled, so it shows",
                "pass the sanity check: their maps change when the network's weights are scrambled, so they show",
            )
            + " what this model learned."
        ]
        if len(failed):
            parts.append(
                _said_of(failed, "barely changes", "barely change")
                + f" on an untrained copy (ρ ≥ {RANDOMISATION_PASS}): trust {_pronoun(failed)} less."
            )
    else:
        parts = [
            "No map passes the sanity check here: each looks much the same on an untrained copy of the network, "
            "so read them as outlines of the digit rather than as the model's reasons."
        ]
    if len(blank):
        parts.append(f"{_names(blank)} cannot be checked here: {FLAT}.")
    lead = "Of the maps that pass" if len(passed) else "Of them all"
    parts.append(_advice(passed if len(passed) else rows, class_name, lead))
    return " ".join(p for p in parts if p)


def _advice(rows: pd.DataFrame, class_name: str, lead: str) -> str:
    """Which of ``rows`` finds the pixels that matter best, and which are best by the other two scores."""
    best = _best(rows, "deletion area")
    if best is None:
        return ""
    also: dict[str, list[str]] = {}
    for column, what in (
        ("infidelity", "best predicts what hiding a patch does"),
        ("sensitivity", "is the steadiest when the input barely moves"),
    ):
        name = _best(rows, column)
        if name is not None and name != best:
            also.setdefault(name, []).append(what)
    others = "; ".join(f"**{name}** {' and '.join(whats)}" for name, whats in also.items())
    subject = "It" if len(rows) == 1 else f"{lead}, **{best}**"
    return (
        f"{subject} points at the pixels that matter most: removing them first makes the probability of "
        f"{class_name} fall fastest{f' ({others})' if others else ''}. Start with the **{best}** map."
    )


def _best(rows: pd.DataFrame, column: str) -> str | None:
    scores = rows[column].dropna()
    return None if scores.empty else str(rows.loc[scores.idxmin(), "method"])


def _said_of(rows: pd.DataFrame, one: str, several: str) -> str:
    """The methods of ``rows`` in bold, then what is said of them, in the singular or the plural."""
    return f"{_names(rows)} {one if len(rows) == 1 else several}"


def _pronoun(rows: pd.DataFrame) -> str:
    return "it" if len(rows) == 1 else "them"


def _names(rows: pd.DataFrame) -> str:
    names = [f"**{name}**" for name in rows["method"]]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _title(name: str) -> str:
    return explain.METHODS[name].title if name in explain.METHODS else name
