"""The attribution registry: every method gives a finite map shaped like the input, Captum does the work,
and the shared model is left exactly as it was."""

import inspect as python_inspect

import numpy as np
import pytest
import torch

from cnn_core import explain, heatmap
from cnn_core.data import to_float
from cnn_core.model.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def model():
    return load_checkpoint("lenet5-mnist-max").model


@pytest.fixture(scope="module")
def digit(bundled):
    return to_float(bundled.test_x[:1])  # (1, 1, 28, 28) in [0, 1]


def _non_default(option: explain.Option):
    if option.kind == "int":
        return option.low
    if option.kind == "flag":
        return not option.default
    return next(c for c in option.choices if c != option.default)


@pytest.mark.parametrize("name", list(explain.METHODS))
def test_every_method_returns_a_finite_map_shaped_like_the_input(name, model, digit):
    attribution = explain.attribute(name, model, digit)
    assert attribution.shape == digit.shape
    assert torch.isfinite(attribution).all()
    assert attribution.abs().sum() > 0, f"{name} attributed nothing"


@pytest.mark.parametrize("name", list(explain.METHODS))
def test_every_declared_option_is_accepted_with_a_non_default_value(name, model, digit):
    for option in explain.options_for(name, model):
        assert option.kind in ("int", "choice", "flag")  # "layer" is resolved to this model's choices
        if option.kind == "int":
            assert option.low <= option.default <= option.high
        value = _non_default(option)
        attribution = explain.attribute(name, model, digit, **{option.name: value})
        assert attribution.shape == digit.shape and torch.isfinite(attribution).all(), (option.name, value)


@pytest.mark.parametrize("name", list(explain.METHODS))
def test_every_options_default_is_its_functions_signature_default(name):
    """The page's widgets start where a direct call starts: the default is written once, in the signature."""
    method = explain.METHODS[name]
    parameters = python_inspect.signature(method.function).parameters
    assert list(parameters)[:3] == ["model", "x", "target"]
    assert {o.name: o.default for o in method.options} == {k: p.default for k, p in list(parameters.items())[3:]}
    assert method.about  # the docstring the page shows


def test_an_option_without_a_keyword_default_is_refused_when_the_method_is_registered():
    def no_default(model, x, target, window):
        """A method whose option has no default."""

    with pytest.raises(TypeError, match="no_default: option 'window' needs a keyword parameter with a default"):
        explain.method("No default", explain.Option("window", "Window"))(no_default)
    with pytest.raises(TypeError, match="option 'stride'"):
        explain.method("Missing", explain.Option("stride", "Stride"))(no_default)
    assert "no_default" not in explain.METHODS


def test_unknown_method_or_option_is_refused_with_the_choices_named(model, digit):
    with pytest.raises(ValueError, match="unknown attribution method 'lime'.*saliency"):
        explain.attribute("lime", model, digit)
    with pytest.raises(ValueError, match="Occlusion: unknown option.*size.*stride, window"):
        explain.attribute("occlusion", model, digit, size=3)


@pytest.mark.parametrize("baseline", explain.BASELINES)
def test_integrated_gradients_sum_to_the_logit_change_from_the_baseline(baseline, model, digit):
    """Completeness: the attributions add up to f(x) − f(baseline) for the target class."""
    target = explain.predicted_class(model, digit)
    attribution = explain.attribute("integrated_gradients", model, digit, target, baseline=baseline, n_steps=64)
    with torch.no_grad():
        change = (model(digit)[0, target] - model(explain.make_baseline(digit, baseline))[0, target]).item()
    assert attribution.sum().item() == pytest.approx(change, rel=0.05)


def test_deeplift_is_exactly_complete_on_the_average_pooling_model(digit):
    """Captum's max-pooling rule is only approximate (off by up to ~20 % on the max model); with
    average pooling every layer is linear or a ReLU, and the rescale rule sums exactly."""
    model = load_checkpoint("lenet5-mnist-avg").model
    target = explain.predicted_class(model, digit)
    attribution = explain.attribute("deeplift", model, digit, target)
    with torch.no_grad():
        change = (model(digit)[0, target] - model(torch.zeros_like(digit))[0, target]).item()
    assert attribution.sum().item() == pytest.approx(change, rel=1e-4)


def test_target_defaults_to_the_predicted_class_and_another_class_gives_another_map(model, digit):
    predicted = explain.predicted_class(model, digit)
    default = explain.attribute("integrated_gradients", model, digit)
    assert torch.equal(default, explain.attribute("integrated_gradients", model, digit, predicted))
    other = explain.attribute("integrated_gradients", model, digit, (predicted + 1) % 10)
    assert not torch.allclose(default, other)


def test_attributing_leaves_the_shared_model_and_input_untouched(model, digit):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    explain.attribute_all(model, digit)
    assert not model.training
    assert all(p.requires_grad for p in model.parameters())
    assert not digit.requires_grad
    for module in model.modules():  # DeepLift, Guided Backprop and Grad-CAM hooked a copy, not this
        assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_attribute_all_gives_every_method_and_matches_one_by_one(model, digit):
    maps = explain.attribute_all(model, digit)
    assert list(maps) == list(explain.METHODS)
    assert torch.allclose(maps["saliency"], explain.attribute("saliency", model, digit))
    assert torch.equal(maps["smoothgrad"], explain.attribute("smoothgrad", model, digit))  # seeded noise


def test_methods_run_on_a_batch_with_one_target_per_input(model, bundled):
    """Captum's sensitivity metric calls a method this way."""
    batch = to_float(bundled.test_x[:3])
    private = explain.private_copy(model)
    for name in explain.METHODS:
        attribution = explain.run_method(name, private, batch, bundled.test_y[:3], {})
        assert attribution.shape == batch.shape, name


def test_grad_cam_layers_skip_one_by_one_maps_and_default_to_the_deepest(model):
    layers = explain.cam_layers(model)
    assert layers == ["conv1", "act1", "pool1", "conv2", "act2", "pool2"]  # conv3/act3 are 1×1
    assert explain.default_cam_layer(model) == "pool2"
    layer_option = explain.options_for("layer_gradcam", model)[0]
    assert layer_option.kind == "choice" and layer_option.choices == tuple(layers)


def test_baselines_are_black_a_blur_of_the_digit_or_seeded_noise(digit):
    assert torch.equal(explain.make_baseline(digit, "black"), torch.zeros_like(digit))
    blurred = explain.make_baseline(digit, "blurred")
    assert blurred.shape == digit.shape and blurred.max() < digit.max()
    assert blurred.sum().item() == pytest.approx(digit.sum().item(), rel=0.1)  # blurring keeps the ink
    noise = explain.make_baseline(digit, "noise")
    assert torch.equal(noise, explain.make_baseline(digit, "noise")) and 0 <= noise.min() and noise.max() <= 1
    with pytest.raises(ValueError, match="baseline must be one of black, blurred, noise"):
        explain.make_baseline(digit, "grey")


def test_diverging_colours_are_blue_white_red_on_a_symmetric_clipped_scale():
    rgb = heatmap.diverging_rgb(np.array([[-2.0, -1.0, 0.0, 1.0, 2.0]]), scale=1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
    assert tuple(rgb[0, 2]) == (247, 247, 247)  # zero is white whatever the scale
    assert rgb[0, 3, 0] > rgb[0, 3, 2] and rgb[0, 1, 2] > rgb[0, 1, 0]  # positive red, negative blue
    assert (rgb[0, 0] == rgb[0, 1]).all() and (rgb[0, 4] == rgb[0, 3]).all()  # clipped beyond the scale


def test_scales_are_per_method_across_models_or_one_shared_scale():
    small, large = (
        {"a": np.full((4, 4), 0.1), "b": np.full((4, 4), 5.0)},
        {"a": np.full((4, 4), 0.3), "b": np.ones((4, 4))},
    )
    assert heatmap.scales(small) == pytest.approx({"a": 0.1, "b": 5.0})
    assert heatmap.scales(small, large) == pytest.approx({"a": 0.3, "b": 5.0})  # the same for both models
    assert heatmap.scales(small, large, shared=True) == pytest.approx({"a": 5.0, "b": 5.0})
    assert heatmap.symmetric_scale(np.zeros((3, 3))) == 1.0  # a blank map still gets a usable scale


def test_pictures_have_the_sizes_a_page_expects(digit):
    attribution = explain.attribute("saliency", load_checkpoint("lenet5-mnist-max").model, digit)
    assert heatmap.overlay(digit, attribution, 1.0, zoom=8).shape == (224, 224, 3)
    assert heatmap.thumbnail(np.ones((300, 60), np.float32)).shape == (112, 112, 3)
    assert heatmap.thumbnail(np.zeros((5000, 4000, 3), np.uint8), side=100).shape == (100, 100, 3)
    assert heatmap.mosaic(np.ones((16, 10, 10)), columns=8, zoom=2, gap=1).shape == (2 * 20 + 1, 8 * 20 + 7, 3)


def test_a_mosaic_puts_each_map_in_its_own_tile_left_to_right_with_grey_gaps_and_empty_tiles_grey():
    maps = np.stack([np.full((2, 3), v, np.float32) for v in (-1.0, 0.0, 1.0)])  # 3 maps of 2×3
    picture = heatmap.mosaic(maps, scale=1.0, columns=2, zoom=2, gap=1)
    assert picture.shape == (2 * 4 + 1, 2 * 6 + 1, 3)
    blue, white, red = (tuple(heatmap.diverging_rgb(np.array([v]), 1.0)[0]) for v in (-1.0, 0.0, 1.0))
    assert {tuple(c) for c in picture[:4, :6].reshape(-1, 3)} == {blue}  # map 0: top left, 4×6 px
    assert {tuple(c) for c in picture[:4, 7:].reshape(-1, 3)} == {white}  # map 1: top right
    assert {tuple(c) for c in picture[5:, :6].reshape(-1, 3)} == {red}  # map 2: second row
    grey = {(200, 200, 200)}
    assert {tuple(c) for c in picture[4].reshape(-1, 3)} == grey and {tuple(c) for c in picture[:, 6]} == grey
    assert {tuple(c) for c in picture[5:, 7:].reshape(-1, 3)} == grey  # no fourth map: an empty tile


def test_the_colour_bar_runs_from_blue_through_white_to_red():
    bar = heatmap.colour_bar(width=101, height=5)
    assert bar.shape == (5, 101, 3) and bar.dtype == np.uint8
    assert tuple(bar[0, 0]) == tuple(heatmap.diverging_rgb(np.array([-1.0]), 1.0)[0])  # −scale: blue
    assert tuple(bar[0, 50]) == (247, 247, 247) and (bar[0] == bar[4]).all()  # 0: white; every row alike
    assert tuple(bar[0, -1]) == tuple(heatmap.diverging_rgb(np.array([1.0]), 1.0)[0])  # +scale: red


def test_occlusions_forward_passes_are_remembered_and_serve_the_next_class(model, digit):
    memory, methods = {}, ("occlusion", "saliency")
    for target in (3, 5):
        plain = explain.attribute_all(model, digit, target, methods)
        remembered = explain.attribute_all(model, digit, target, methods, memory=memory)
        assert all(torch.equal(plain[name], remembered[name]) for name in methods)
        if target == 3:
            entries = len(memory)  # the digit and its 169 occluded copies; saliency needs gradients: none
    assert entries == 2 and len(memory) == entries  # class 5 made no new forward pass
