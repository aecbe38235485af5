"""Why did the network answer that? Captum's attribution methods behind one small registry.

Every method is a function ``(model, x, target, **options) -> attribution`` whose result has the
input's shape, so maps from different methods can be drawn side by side on one colour scale and
scored by the same faithfulness metrics (``cnn_core.faithfulness``). Captum does the work; this
module only picks sensible defaults for 28×28 digits and declares each method's options so a page
can build its widgets from them.

DeepLift, Guided Backprop and Grad-CAM hook the model's activation and conv modules while they run.
``attribute``/``attribute_all`` therefore work on a private copy of the model, never on the cached
one that other sessions are using at the same moment.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from captum.attr import (
    DeepLift, GuidedBackprop, GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam,
    NoiseTunnel, Occlusion, Saliency,
)
from torch import nn

from cnn_core.inspect import feature_shapes
from cnn_core.inspect import layer as named_layer

BASELINES = ("black", "blurred", "noise")
BLUR_SIGMA = 3.0  # px: wide enough to wipe out a stroke (MNIST strokes are 2-3 px) but keep the blob
NOISE_SEED = 0  # baselines and SmoothGrad's noise are seeded: the same input gives the same map


@dataclass(frozen=True)
class Option:
    """One setting of a method, described well enough for a page to build its widget."""

    name: str
    label: str
    default: Any
    kind: str = "int"  # "int" (a slider from low to high), "choice", "flag" or "layer" (filled in per model)
    low: int = 0
    high: int = 0
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    function: Callable[..., torch.Tensor]
    options: tuple[Option, ...]
    about: str


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
    kernel = torch.exp(-(t ** 2) / (2 * sigma ** 2))
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


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: Any, baseline: str = "black",
                         n_steps: int = 24) -> torch.Tensor:
    # 24 Gauss-Legendre steps already give a completeness error of a few % of the logit on LeNet-5.
    ig = IntegratedGradients(model)
    return ig.attribute(x, make_baseline(x, baseline), target=target, n_steps=n_steps)


def saliency(model: nn.Module, x: torch.Tensor, target: Any, absolute: bool = True) -> torch.Tensor:
    return Saliency(model).attribute(x, target=target, abs=absolute)


def deeplift(model: nn.Module, x: torch.Tensor, target: Any, baseline: str = "black") -> torch.Tensor:
    with warnings.catch_warnings():  # Captum warns on every call that it hooks the activations
        warnings.simplefilter("ignore", UserWarning)
        return DeepLift(model).attribute(x, make_baseline(x, baseline), target=target)


def guided_backprop(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
    return GuidedBackprop(model).attribute(x, target=target)


def guided_gradcam(model: nn.Module, x: torch.Tensor, target: Any, layer: str | None = None) -> torch.Tensor:
    cam_layer = named_layer(model, layer or default_cam_layer(model))
    return GuidedGradCam(model, cam_layer).attribute(x, target=target, interpolate_mode="bilinear")


def layer_gradcam(model: nn.Module, x: torch.Tensor, target: Any, layer: str | None = None) -> torch.Tensor:
    cam = LayerGradCam(model, named_layer(model, layer or default_cam_layer(model)))
    coarse = cam.attribute(x, target=target, relu_attributions=True)  # (N, 1, h, w)
    fine = LayerAttribution.interpolate(coarse, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return fine.expand_as(x).contiguous()


def occlusion(model: nn.Module, x: torch.Tensor, target: Any, window: int = 6, stride: int = 3) -> torch.Tensor:
    # 6×6 windows every 3 px: 8×8 = 64 positions, one batch; a window covers about one stroke.
    channels, height, width = x.shape[1:]
    positions = ((height - window) // stride + 1) * ((width - window) // stride + 1)
    return Occlusion(model).attribute(x, sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
                                      baselines=0.0, target=target, perturbations_per_eval=max(positions, 1))


def smoothgrad(model: nn.Module, x: torch.Tensor, target: Any, samples: int = 16, noise_percent: int = 15,
               absolute: bool = True) -> torch.Tensor:
    # Smilkov et al. found 10-20 % of the input range best; 16 samples go through in one batch.
    tunnel = NoiseTunnel(Saliency(model))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(NOISE_SEED)
        return tunnel.attribute(x, nt_type="smoothgrad", nt_samples=samples, nt_samples_batch_size=samples,
                                stdevs=noise_percent / 100, target=target, abs=absolute)


_BASELINE = Option("baseline", "Baseline", "black", "choice", choices=BASELINES,
                   help="What 'no digit' looks like: a black image, a blur of this digit, or uniform noise.")
_LAYER = Option("layer", "Layer", None, "layer", help="The layer whose feature maps are weighed by their gradients.")
_ABSOLUTE = Option("absolute", "Absolute value", True, "flag", help="Show |gradient|: how much, not which way.")

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("integrated_gradients", "Integrated Gradients", integrated_gradients,
           (_BASELINE, Option("n_steps", "Steps", 24, low=4, high=200, help="Points on the path from baseline to input.")),
           "Gradients averaged along a straight path from the baseline to the digit, times the difference."),
    Method("saliency", "Saliency", saliency, (_ABSOLUTE,), "The gradient of the class score for each pixel."),
    Method("deeplift", "DeepLift", deeplift, (_BASELINE,),
           "Each pixel's share of the change in score from the baseline, by DeepLift's rescale rule."),
    Method("guided_backprop", "Guided Backprop", guided_backprop, (),
           "Gradients with negative signals stopped at every ReLU on the way back."),
    Method("guided_gradcam", "Guided Grad-CAM", guided_gradcam, (_LAYER,),
           "Guided Backprop multiplied by the upsampled Grad-CAM map."),
    Method("layer_gradcam", "Layer Grad-CAM", layer_gradcam, (_LAYER,),
           "A layer's feature maps weighted by their mean gradient, ReLU, upsampled to 28×28."),
    Method("occlusion", "Occlusion", occlusion,
           (Option("window", "Window", 6, low=2, high=14, help="Side of the black square slid over the digit."),
            Option("stride", "Stride", 3, low=1, high=14, help="Pixels between two positions of the square.")),
           "How much the class score drops when a black square hides each region."),
    Method("smoothgrad", "SmoothGrad", smoothgrad,
           (Option("samples", "Samples", 16, low=2, high=100, help="Noisy copies averaged."),
            Option("noise_percent", "Noise (% of range)", 15, low=1, high=50, help="Standard deviation of the noise."),
            _ABSOLUTE),
           "Saliency averaged over noisy copies of the digit (NoiseTunnel), which removes gradient speckle."),
)}


def options_for(name: str, model: nn.Module) -> tuple[Option, ...]:
    """A method's options with the model filled in (a "layer" option lists this model's conv layers)."""
    method = _method(name)
    return tuple(Option(o.name, o.label, default_cam_layer(model), "choice", choices=tuple(cam_layers(model)), help=o.help)
                 if o.kind == "layer" else o for o in method.options)


def default_options(name: str, model: nn.Module) -> dict[str, Any]:
    return {o.name: o.default for o in options_for(name, model)}


def predicted_class(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1]).argmax(1).item())


def private_copy(model: nn.Module) -> nn.Module:
    """A copy in eval mode whose weights need no gradients: hooks on it touch no one else's model,
    and the backward pass skips the weight gradients no attribution needs."""
    clone = copy.deepcopy(model).eval()
    clone.requires_grad_(False)
    return clone


def attribute(name: str, model: nn.Module, x: torch.Tensor, target: int | None = None,
              **options: Any) -> torch.Tensor:
    """Attribution of method ``name`` for ``target`` (the predicted class when None), shaped like ``x``."""
    return _run(name, private_copy(model), x, target, options)


def attribute_all(model: nn.Module, x: torch.Tensor, target: int | None = None, methods: tuple[str, ...] | None = None,
                  options: dict[str, dict[str, Any]] | None = None) -> dict[str, torch.Tensor]:
    """Attributions by several methods (all by default) for one target, from one private copy of the model."""
    private = private_copy(model)
    target = predicted_class(private, x) if target is None else target
    options = options or {}
    return {name: _run(name, private, x, target, options.get(name, {})) for name in (methods or tuple(METHODS))}


def _run(name: str, model: nn.Module, x: torch.Tensor, target: int | None, options: dict[str, Any]) -> torch.Tensor:
    method = _method(name)
    known = {o.name for o in method.options}
    unknown = set(options) - known
    if unknown:
        raise ValueError(f"{method.title}: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"it has {', '.join(sorted(known)) or 'none'}")
    target = predicted_class(model, x) if target is None else target
    return method.function(model, x, target, **options).detach()


def _method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown attribution method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]
