"""Looking inside a trained network: attributions (Captum), filters, feature maps, favourite images, the embedding.

Lazy (PEP 562): ``cnn_core.explain.predict`` and the other modules import without Captum (and the matplotlib it
brings), so ``cnn-lab predict`` starts fast and writes nothing to the home folder; the attribution names below load
``cnn_core.explain.attributions`` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnn_core import lazy_exports

if TYPE_CHECKING:
    from cnn_core.explain.attributions import (
        BASELINES,
        BLUR_SIGMA,
        FORWARD_ONLY,
        METHODS,
        NOISE_SEED,
        ForwardMemory,
        Method,
        Option,
        RememberedForward,
        attribute,
        attribute_all,
        cam_layers,
        deeplift,
        default_cam_layer,
        default_options,
        guided_backprop,
        guided_gradcam,
        integrated_gradients,
        layer_gradcam,
        make_baseline,
        method,
        occlusion,
        options_for,
        predicted_class,
        private_copy,
        run_method,
        saliency,
        smoothgrad,
    )

__all__ = [
    "attribute",
    "attribute_all",
    "BASELINES",
    "BLUR_SIGMA",
    "cam_layers",
    "deeplift",
    "default_cam_layer",
    "default_options",
    "FORWARD_ONLY",
    "ForwardMemory",
    "guided_backprop",
    "guided_gradcam",
    "integrated_gradients",
    "layer_gradcam",
    "make_baseline",
    "Method",
    "method",
    "METHODS",
    "NOISE_SEED",
    "occlusion",
    "Option",
    "options_for",
    "predicted_class",
    "private_copy",
    "RememberedForward",
    "run_method",
    "saliency",
    "smoothgrad",
]

__getattr__ = lazy_exports(__name__, "cnn_core.explain.attributions", __all__)
