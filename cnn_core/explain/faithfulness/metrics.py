"""The scores themselves, one function a question (see the package docstring); seeded, so the same input
gets the same scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from captum.attr import IntegratedGradients
from captum.metrics import infidelity as captum_infidelity
from captum.metrics import sensitivity_max
from torch import nn

from cnn_core import explain
from cnn_core.explain import RememberedForward
from cnn_core.heatmap import as_map
from cnn_core.model import ConvNet, build_model

if TYPE_CHECKING:
    from cnn_core.explain.attributions import ForwardMemory

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


def remembered_forward(model: nn.Module, memory: ForwardMemory | None, name: str) -> nn.Module | RememberedForward:
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
    memory: ForwardMemory | None = None,
    private: nn.Module | None = None,
) -> float:
    """Captum's sensitivity_max: the largest relative change of the map under tiny uniform noise.

    ``attribution``, the map of ``x`` already made with the same options, saves making it again;
    ``memory`` (see ``RememberedForward``) keeps a forward-only method's passes for the next class;
    ``private``, a ``explain.private_copy`` of ``model`` made once for several methods, saves copying it.
    """
    private = private if private is not None else explain.private_copy(model)
    forward: nn.Module | RememberedForward = private
    if method in explain.FORWARD_ONLY:
        forward = remembered_forward(private, memory, "copy")  # the private copy runs channels-last: not "model"
    generator = torch.Generator().manual_seed(SEED)

    def explanation(inputs: torch.Tensor | tuple[torch.Tensor], target: Any) -> tuple[torch.Tensor]:
        # A 1-tuple, never a bare tensor: Captum iterates over the unperturbed explanation as given, so a bare
        # (1, C, H, W) map would be taken apart along its batch dimension and compared, broadcast, against the
        # wrong maps (an error for colour, a silently wrong score for one channel). Contiguous: Captum views
        # the maps as rows, and a private copy's maps come back channels-last.
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs  # Captum passes a 1-tuple at first
        if inputs is x and attribution is not None:  # Captum's first call: the unperturbed map
            return (torch.as_tensor(attribution).to(x).contiguous(),)
        return (explain.run_method(method, forward, inputs, target, options or {}).contiguous(),)

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
        raise ValueError(f"{explain.METHODS[method].title} does not start from a baseline: completeness does not apply")
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
    return build_model(cast(ConvNet, model).config, seed=seed).to(next(model.parameters()).device).eval()


def randomisation_check(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: int,
    options: dict[str, Any] | None = None,
    attribution: torch.Tensor | None = None,
    memory: ForwardMemory | None = None,
    random_private: nn.Module | None = None,
) -> tuple[float, float]:
    """Rank correlations (signed maps, |maps|) between the trained and a re-initialised model,
    same method, same input, same class (``random_private``: a private copy of ``randomised_copy``
    made once for several methods)."""
    options = options or {}
    trained = attribution if attribution is not None else explain.attribute(method, model, x, target, **options)
    random_model = random_private if random_private is not None else explain.private_copy(randomised_copy(model))
    forward: nn.Module | RememberedForward = random_model
    if method in explain.FORWARD_ONLY:
        forward = remembered_forward(random_model, memory, "random")
    random = explain.run_method(method, forward, x, target, options)
    trained_map, random_map = as_map(trained), as_map(random)
    return rank_correlation(trained_map, random_map), rank_correlation(np.abs(trained_map), np.abs(random_map))
