"""The network's speed paths (``cnn_core.model.fast``) against the plain ``nn.Sequential`` pass: the same numbers."""

import pytest
import torch
import torch.nn.functional as F

from cnn_core.config import LENET5_CONV, ModelConfig
from cnn_core.model import build_model
from cnn_core.model.fast import commutes, conv_as_matmul, covers, max_pool_2x2, pool_2x2

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(7, 6, 28, 28), (3, 16, 10, 10), (2, 1, 28, 28), (1, 3, 2, 2)])
def test_the_fast_2x2_pool_matches_pytorch_bit_for_bit_and_keeps_the_memory_format(layout, dtype, shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen).round(decimals=1).to(dtype)  # rounded: ties in many windows
    x.view(-1)[::97] = float("nan")
    x.view(-1)[5::89] = float("-inf")
    x = x.contiguous(memory_format=LAYOUTS[layout])
    ours, theirs = max_pool_2x2(x), F.max_pool2d(x, 2, 2)
    assert torch.equal(ours.isnan(), theirs.isnan())
    assert torch.equal(ours.nan_to_num(), theirs.nan_to_num()) and ours.dtype == dtype
    assert ours.is_contiguous(memory_format=LAYOUTS[layout])


def test_the_fast_pool_runs_only_without_a_gradient_or_hooks_and_for_plain_2x2_windows():
    pool, x = torch.nn.MaxPool2d(2, 2), torch.randn(4, 6, 28, 28)
    with torch.no_grad():
        fast = pool_2x2(pool, x)
    leaf = x.clone().requires_grad_()
    slow = pool_2x2(pool, leaf)
    assert torch.equal(fast, slow) and "MaxPool2D" in type(slow.grad_fn).__name__  # PyTorch's, for its backward
    slow.sum().backward()
    assert leaf.grad.sum().item() == 4 * 6 * 14 * 14  # one winner per window
    seen = []
    pool.register_forward_hook(lambda *_: seen.append(1))
    with torch.no_grad():
        pool_2x2(pool, x)  # a hooked pool is called, so its hooks run
        assert seen == [1]
        for module, inp in (  # odd sizes (floor mode), other windows and padding keep PyTorch's kernel
            (torch.nn.MaxPool2d(2, 2), torch.randn(2, 3, 7, 9)),
            (torch.nn.MaxPool2d(3, 2), torch.randn(2, 3, 8, 8)),
            (torch.nn.MaxPool2d(2, 2, padding=1), torch.randn(2, 3, 8, 8)),
        ):
            assert torch.equal(pool_2x2(module, inp), module(inp))


def test_deeplift_sees_plain_pools_and_gives_the_attributions_of_a_plain_pytorch_network():
    """Captum's DeepLift applies its max-pool rule only to modules whose type is exactly nn.MaxPool2d."""
    from captum.attr import DeepLift

    from benchmarks.article_recipe import article_lenet5

    torch.manual_seed(0)
    plain = article_lenet5().eval()
    torch.manual_seed(0)
    ours = build_model().eval()
    assert type(ours.pool1) is torch.nn.MaxPool2d
    x = torch.rand(3, 1, 28, 28)
    got = DeepLift(ours).attribute(x, baselines=torch.zeros_like(x), target=4)
    want = DeepLift(plain).attribute(x, baselines=torch.zeros_like(x), target=4)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_network_gives_the_same_logits_with_and_without_a_gradient(channels_last):
    model = build_model(ModelConfig(), seed=1).eval()
    x = torch.rand(32, 1, 28, 28)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = model(x)
        table_order = torch.nn.Sequential.forward(model, x)  # ReLU then PyTorch's pool, layer by layer
    assert torch.equal(fast, model(x).detach())
    torch.testing.assert_close(fast, table_order, rtol=1e-5, atol=1e-5)  # C5 as a product: sums in another order


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_convolution_over_its_whole_input_is_a_matrix_product_with_the_same_outputs_and_gradients(layout):
    """LeNet-5's third convolution (16×5×5 in, one output pixel) runs as a matrix product: PyTorch's convolution
    gives the same outputs and gradients, up to the order of the sums."""
    torch.manual_seed(0)
    ours = torch.nn.Conv2d(16, 120, 5)
    plain = torch.nn.Conv2d(16, 120, 5)
    plain.load_state_dict(ours.state_dict())
    fmt = LAYOUTS[layout]
    ours, plain = ours.to(memory_format=fmt), plain.to(memory_format=fmt)
    x = torch.randn(8, 16, 5, 5).contiguous(memory_format=fmt)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, out_b = conv_as_matmul(ours, a), plain(b)
    assert covers(ours, x) and "Addmm" in type(out_a.grad_fn.next_functions[0][0]).__name__
    torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-5)
    assert out_a.shape == (8, 120, 1, 1)
    grad = torch.randn_like(out_b)
    out_a.backward(grad)
    out_b.backward(grad)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.bias.grad, plain.bias.grad, rtol=1e-5, atol=1e-5)


def test_other_convolutions_are_not_taken_for_matrix_products():
    x = torch.randn(2, 6, 14, 14)
    convs = (torch.nn.Conv2d(6, 16, 5), torch.nn.Conv2d(6, 16, 14, padding=1), torch.nn.Conv2d(6, 6, 14, groups=2))
    for conv in convs:
        assert not covers(conv, x)


@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
def test_a_training_pass_pools_before_the_relu_with_identical_results_and_gradients(precision):
    two_blocks = ModelConfig(conv=LENET5_CONV[:2])  # no convolution over its whole input: only the pool moves
    model = build_model(two_blocks, seed=2).to(memory_format=torch.channels_last)
    x = torch.rand(48, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (48,))
    seen = []
    for forward in (model, lambda t: torch.nn.Sequential.forward(model, t)):  # fast, then the layer table's order
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == torch.bfloat16):
            out = forward(x)
        F.cross_entropy(out.float(), y).backward()
        seen.append([out.detach(), *(p.grad.clone() for p in model.parameters())])
    assert all(torch.equal(a, b) for a, b in zip(*seen, strict=True))


def test_pooling_first_only_where_it_changes_nothing():
    relu_max = build_model(ModelConfig(), seed=0)
    assert relu_max.pool_after == {"act1": "pool1", "act2": "pool2"}  # act3 has no pooling after it
    assert commutes(relu_max.act1, relu_max.pool1)
    for activation in ("gelu", "leaky_relu"):  # gelu is not monotonic; a leaky ReLU's rounding makes new ties
        other = build_model(ModelConfig(activation=activation), seed=0)
        assert not commutes(other.act1, other.pool1)
    avg = build_model(ModelConfig().with_pooling("avg"), seed=0)
    assert not commutes(avg.act1, avg.pool1)
    sizes = []  # a hook on the activation sees what the layer table promises, even while training
    hook = relu_max.act1.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape)))
    relu_max.train()(torch.rand(2, 1, 28, 28)).sum().backward()
    hook.remove()
    assert sizes == [(2, 6, 28, 28)] and commutes(relu_max.act1, relu_max.pool1)


def test_the_article_baseline_is_the_same_network_in_plain_pytorch_modules():
    """benchmarks/article_recipe.py races CNN Lab without its speed-ups: same architecture and starting weights,
    plain nn.Conv2d / nn.MaxPool2d, layer-table order."""
    from benchmarks.article_recipe import article_lenet5

    torch.manual_seed(0)
    article = article_lenet5()
    torch.manual_seed(0)
    ours = build_model()
    assert all(torch.equal(a, b) for a, b in zip(article.parameters(), ours.parameters(), strict=True))
    x = torch.rand(16, 1, 28, 28)
    torch.testing.assert_close(article(x), ours(x), rtol=1e-5, atol=1e-5)


def _pair(cfg: ModelConfig | None = None, seed: int = 3) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The same network and weights, with and without the speed paths."""
    return build_model(cfg, seed=seed, fast=True), build_model(cfg, seed=seed, fast=False)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
def test_the_fast_and_plain_paths_agree_on_outputs_and_gradients(activation, precision):
    fast, plain = _pair(ModelConfig(activation=activation))
    assert fast.fast and not plain.fast
    assert [type(m) for m in fast.modules()] == [type(m) for m in plain.modules()]  # stock modules either way
    x, y = torch.rand(24, 1, 28, 28), torch.randint(0, 10, (24,))
    seen = []
    for model in (fast, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == torch.bfloat16):
            out = model(x)
        F.cross_entropy(out.float(), y).backward()
        with torch.no_grad():
            evaluated = model.eval()(x)
        seen.append([out.detach(), evaluated, *(p.grad for p in model.parameters())])
    for a, b in zip(*seen, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_fast_and_plain_paths_fire_the_same_hooks_with_the_same_feature_maps():
    maps: dict[bool, dict[str, torch.Tensor]] = {True: {}, False: {}}
    x = torch.rand(4, 1, 28, 28)
    for model in _pair():
        for name in ("conv1", "act1", "pool1", "conv3"):
            record = maps[model.fast]
            getattr(model, name).register_forward_hook(lambda _m, _i, out, n=name, r=record: r.__setitem__(n, out))
        with torch.no_grad():
            model.eval()(x)
    assert maps[True].keys() == maps[False].keys() == {"conv1", "act1", "pool1", "conv3"}
    for name in maps[True]:
        torch.testing.assert_close(maps[True][name], maps[False][name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["IntegratedGradients", "DeepLift", "GuidedBackprop", "Saliency"])
def test_the_fast_and_plain_paths_give_captum_the_same_attributions(method):
    import captum.attr

    x = torch.rand(3, 1, 28, 28)
    got = [getattr(captum.attr, method)(model.eval()).attribute(x, target=4) for model in _pair()]
    torch.testing.assert_close(got[0], got[1], rtol=1e-4, atol=1e-6)


def test_the_switch_turns_the_speed_paths_off_for_a_whole_process():
    import subprocess
    import sys

    code = "from cnn_core.model import build_model; print(build_model().fast)"
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        for env in ({**__import__("os").environ, "CNN_LAB_FAST": "0"}, dict(__import__("os").environ))
    ]
    assert [r.stdout.strip() for r in runs] == ["False", "True"]
