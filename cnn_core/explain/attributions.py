"""Why did the network answer that? Captum's attribution methods behind one small registry.

Every method is a function ``(model, x, target, **options) -> attribution`` whose result has the
input's shape, so maps from different methods can be drawn side by side on one colour scale and
scored by the same faithfulness metrics (``cnn_core.explain.faithfulness``). Captum does the work; this
module only picks sensible defaults for 28×28 digits and declares each method's options so a page
can build its widgets from them.

DeepLift, Guided Backprop and Grad-CAM hook the model's activation and conv modules while they run.
``attribute``/``attribute_all`` therefore work on a private copy of the model, never on the cached
one that other sessions are using at the same moment.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, TypeVar, cast

import torch
import torch.nn.functional as F
from captum.attr import (
    DeepLift,
    GuidedBackprop,
    GuidedGradCam,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

from cnn_core.explain.filters import feature_shapes
from cnn_core.explain.filters import layer as named_layer

BASELINES = ("black", "blurred", "noise")
BLUR_SIGMA = 3.0  # px: wide enough to wipe out a stroke (MNIST strokes are 2-3 px) but keep the blob
NOISE_SEED = 0  # baselines and SmoothGrad's noise are seeded: the same input gives the same map
# Methods that only run the model forward, without gradients or hooks (so they need no private copy,
# and what they compute for one class serves every class: cnn_core.explain.faithfulness remembers it).
FORWARD_ONLY = ("occlusion",)


@dataclass(frozen=True)
class Option:
    """One setting of a method, described well enough for a page to build its widget."""

    name: str
    label: str
    kind: str = "int"  # "int" (a slider from low to high), "choice", "flag" or "layer" (filled in per model)
    low: int = 0
    high: int = 0
    choices: tuple[str, ...] = ()
    help: str = ""
    default: Any = None  # not written here: @method copies the function's own, so widget and call agree


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    function: Callable[..., torch.Tensor]
    options: tuple[Option, ...]
    about: str  # the function's docstring: one line for the page


METHODS: dict[str, Method] = {}  # filled in by @method below, in the order the page shows them
_Function = TypeVar("_Function", bound=Callable[..., torch.Tensor])


def method(title: str, *options: Option) -> Callable[[_Function], _Function]:
    """Register an attribution function under its name, with a title and options (defaults from its signature)."""

    def register(function: _Function) -> _Function:
        about = (function.__doc__ or "").strip()
        declared = tuple(replace(o, default=_signature_default(function, o.name)) for o in options)
        METHODS[function.__name__] = Method(function.__name__, title, function, declared, about)
        return function

    return register


def _signature_default(function: Callable[..., Any], name: str) -> Any:
    parameter = inspect.signature(function).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise TypeError(f"{function.__name__}: option {name!r} needs a keyword parameter with a default")
    return parameter.default


_BASELINE = Option(
    "baseline",
    "Baseline",
    "choice",
    choices=BASELINES,
    help="What 'no digit' looks like: a black image, a blur of this digit, or uniform noise.",
)
_LAYER = Option("layer", "Layer", "layer", help="The layer whose feature maps are weighed by their gradients.")
_ABSOLUTE = Option("absolute", "Absolute value", "flag", help="Show |gradient|: how much, not which way.")


def make_baseline(x: torch.Tensor, kind: str = "black") -> torch.Tensor:
    """The "absence of the digit" that IG and DeepLift measure from: black, a blur of x, or noise."""
    if kind == "black":
        return torch.zeros_like(x)
    if kind == "blurred":
        return _gaussian_blur(x, BLUR_SIGMA)
    if kind == "noise":
        generator = torch.Generator().manual_seed(NOISE_SEED)
        return torch.rand(x.shape, generator=generator).to(x)
    raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, not {kind!r}")


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(2 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    out = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)  # rows
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)  # columns


def cam_layers(model: nn.Module) -> list[str]:
    """Layers Grad-CAM can weigh: conv, activation and pooling outputs bigger than 1×1.

    (A 1×1 map, like LeNet-5's conv3, upsamples to one flat colour.)
    """
    return [name for name, shape in feature_shapes(model).items() if shape[-1] > 1]


def default_cam_layer(model: nn.Module) -> str:
    """The deepest of them (pool2 in LeNet-5): Grad-CAM's "last convolutional feature maps".

    Measured on the bundled models: conv2's raw outputs are mostly negative, so after Grad-CAM's
    ReLU their map is often all zero; the rectified, pooled maps give a clear one.
    """
    return cam_layers(model)[-1]


# Completeness (the map sums to f(x) − f(baseline)) is off by a median 1 % (90th percentile 3 %) with
# 32 Gauss-Legendre steps on the bundled LeNet-5, measured over 30 digits and all three baselines.
@method("Integrated Gradients", _BASELINE, Option("n_steps", "Steps", low=4, high=200, help="Points on the path."))
def integrated_gradients(
    model: nn.Module, x: torch.Tensor, target: Any, baseline: str = "black", n_steps: int = 32
) -> torch.Tensor:
    """Gradients averaged along a straight path from the baseline to the digit, times the difference."""
    return cast(
        torch.Tensor,
        IntegratedGradients(model).attribute(x, make_baseline(x, baseline), target=target, n_steps=n_steps),
    )


@method("Saliency", _ABSOLUTE)
def saliency(model: nn.Module, x: torch.Tensor, target: Any, absolute: bool = True) -> torch.Tensor:
    """The gradient of the class score for each pixel."""
    return cast(torch.Tensor, Saliency(model).attribute(x, target=target, abs=absolute))


# Sums exactly to f(x) − f(baseline) with average pooling; Captum's max-pooling rule is an
# approximation (measured: off by a median 3 %, up to 20 %, on the bundled max-pooling model).
@method("DeepLift", _BASELINE)
def deeplift(model: nn.Module, x: torch.Tensor, target: Any, baseline: str = "black") -> torch.Tensor:
    """Each pixel's share of the change in score from the baseline, by DeepLift's rescale rule."""
    return cast(torch.Tensor, DeepLift(model).attribute(x, make_baseline(x, baseline), target=target))


@method("Guided Backprop")
def guided_backprop(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
    """Gradients with negative signals stopped at every ReLU on the way back."""
    return cast(torch.Tensor, GuidedBackprop(model).attribute(x, target=target))


@method("Guided Grad-CAM", _LAYER)
def guided_gradcam(model: nn.Module, x: torch.Tensor, target: Any, layer: str | None = None) -> torch.Tensor:
    """Guided Backprop multiplied by the upsampled Grad-CAM map."""
    cam_layer = named_layer(model, layer or default_cam_layer(model))
    return cast(torch.Tensor, GuidedGradCam(model, cam_layer).attribute(x, target=target, interpolate_mode="bilinear"))


@method("Layer Grad-CAM", _LAYER)
def layer_gradcam(model: nn.Module, x: torch.Tensor, target: Any, layer: str | None = None) -> torch.Tensor:
    """A layer's feature maps weighted by their mean gradient, ReLU, upsampled to 28×28."""
    cam = LayerGradCam(model, named_layer(model, layer or default_cam_layer(model)))
    coarse = cam.attribute(x, target=target, relu_attributions=True)  # (N, 1, h, w)
    fine = LayerAttribution.interpolate(coarse, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return cast(torch.Tensor, fine.expand_as(x).contiguous())


# 4×4 windows every 2 px: 13×13 = 169 positions that tile 28 px exactly, run as one batch; a window
# hides about one stroke's width (MNIST strokes are 2-3 px).
@method(
    "Occlusion",
    Option("window", "Window", low=2, high=14, help="Side of the black square slid over the digit."),
    Option("stride", "Stride", low=1, high=14, help="Pixels between two positions of the square."),
)
def occlusion(model: nn.Module, x: torch.Tensor, target: Any, window: int = 4, stride: int = 2) -> torch.Tensor:
    """How much the class score drops when a black square hides each region."""
    channels, height, width = x.shape[1:]
    positions = ((height - window) // stride + 1) * ((width - window) // stride + 1)
    return cast(
        torch.Tensor,
        Occlusion(model).attribute(
            x,
            sliding_window_shapes=(channels, window, window),
            strides=(channels, stride, stride),
            baselines=0.0,
            target=target,
            perturbations_per_eval=max(positions, 1),
        ),
    )


# Smilkov et al. found noise of 10-20 % of the input range best; 16 samples go through in one batch.
@method(
    "SmoothGrad",
    Option("samples", "Samples", low=2, high=100, help="Noisy copies averaged."),
    Option("noise_percent", "Noise (% of range)", low=1, high=50, help="Standard deviation of the noise."),
    _ABSOLUTE,
)
def smoothgrad(
    model: nn.Module, x: torch.Tensor, target: Any, samples: int = 16, noise_percent: int = 15, absolute: bool = True
) -> torch.Tensor:
    """Saliency averaged over noisy copies of the digit (NoiseTunnel), which removes gradient speckle."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(NOISE_SEED)
        return cast(
            torch.Tensor,
            NoiseTunnel(Saliency(model)).attribute(
                x,
                nt_type="smoothgrad",
                nt_samples=samples,
                nt_samples_batch_size=samples,
                stdevs=noise_percent / 100,
                target=target,
                abs=absolute,
            ),
        )


def options_for(name: str, model: nn.Module) -> tuple[Option, ...]:
    """A method's options with the model filled in (a "layer" option lists this model's conv layers)."""
    return tuple(
        replace(o, kind="choice", choices=tuple(cam_layers(model)), default=default_cam_layer(model))
        if o.kind == "layer"
        else o
        for o in _lookup(name).options
    )


def default_options(name: str, model: nn.Module) -> dict[str, Any]:
    return {o.name: o.default for o in options_for(name, model)}


# A shared memory of forward passes: (model name, input shape, dtype, SHA-256 of the input) -> output.
ForwardMemory: TypeAlias = dict[tuple[str, tuple[int, ...], str, bytes], torch.Tensor]


class RememberedForward:
    """A model's forward passes without gradients, remembered by their input (a hash of its values).

    Occlusion's windows over a digit do not depend on the class explained, and faithfulness scoring
    repeats many more passes (infidelity's seeded squares for every method, occlusion over noisy copies
    and on an untrained network). A page keeps ``memory`` for one digit and model, so a second class
    costs ~40 % less to explain and score. Passes that need a gradient go straight to the model.
    """

    def __init__(self, model: nn.Module, memory: ForwardMemory, name: str) -> None:
        self.model, self.memory, self.name = model, memory, name  # name: which model, in a shared memory

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and inputs.requires_grad:
            return cast(torch.Tensor, self.model(inputs))
        values = inputs.detach().cpu().contiguous()  # SHA-256: faster than BLAKE2 here (bench_explain)
        digest = hashlib.sha256(values.numpy()).digest()  # type: ignore[arg-type]  # numpy: no __buffer__ before 3.12
        key = (self.name, tuple(values.shape), str(values.dtype), digest)
        if key not in self.memory:
            with torch.no_grad():
                self.memory[key] = self.model(inputs).detach()
        return self.memory[key].clone()


def predicted_class(model: nn.Module | RememberedForward, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1]).argmax(1).item())


def private_copy(model: nn.Module) -> nn.Module:
    """A copy in eval mode whose weights need no gradients: hooks on it touch no one else's model,
    and the backward pass skips the weight gradients no attribution needs.

    Its weights are channels-last: oneDNN runs a one-channel 5×5 convolution (LeNet-5's conv1) several times
    faster in that layout, which speeds up occlusion's and the faithfulness checks' batches of a thousand digits
    (benchmarks/bench_explain.py), and the maps agree with the default layout's to 1e-7.
    """
    clone = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    clone.requires_grad_(False)
    return clone


def attribute(name: str, model: nn.Module, x: torch.Tensor, target: int | None = None, **options: Any) -> torch.Tensor:
    """Attribution of method ``name`` for ``target`` (the predicted class when None), shaped like ``x``."""
    return run_method(name, private_copy(model), x, target, options)


def attribute_all(
    model: nn.Module,
    x: torch.Tensor,
    target: int | None = None,
    methods: tuple[str, ...] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    memory: ForwardMemory | None = None,
) -> dict[str, torch.Tensor]:
    """Attributions by several methods (all by default) for one target, from one private copy of the model
    (``memory``: see ``RememberedForward``)."""
    private = private_copy(model)
    target = predicted_class(private, x) if target is None else target
    options = options or {}
    remembered: nn.Module | RememberedForward = (
        RememberedForward(private, memory, "copy") if memory is not None else private
    )
    return {
        name: run_method(name, remembered if name in FORWARD_ONLY else private, x, target, options.get(name, {}))
        for name in (methods or tuple(METHODS))
    }


def run_method(
    name: str, model: nn.Module | RememberedForward, x: torch.Tensor, target: Any, options: dict[str, Any]
) -> torch.Tensor:
    """Like ``attribute`` but on ``model`` itself, hooks and all: pass a ``private_copy``.

    ``target`` may also be a tensor of one class per input (Captum's metrics call it that way).
    """
    entry = _lookup(name)
    known = {o.name for o in entry.options}
    unknown = set(options) - known
    if unknown:
        raise ValueError(
            f"{entry.title}: unknown option(s) {', '.join(sorted(unknown))}; "
            f"it has {', '.join(sorted(known)) or 'none'}"
        )
    target = predicted_class(model, x) if target is None else target
    x = x.detach().clone()  # Captum flips requires_grad on its input: not on the caller's tensor
    with warnings.catch_warnings():
        # Captum says on every call that it set requires_grad or hooked the activations: both expected.
        warnings.filterwarnings("ignore", "(Input Tensor|Setting)", UserWarning)
        return entry.function(model, x, target, **options).detach()


def _lookup(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown attribution method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]
