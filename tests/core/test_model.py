"""The network's max pooling: the fast path where no gradient is wanted gives PyTorch's numbers bit for bit."""

import pytest
import torch
import torch.nn.functional as F

from cnn_core.config import ModelConfig
from cnn_core.model.network import Conv2d, _commutes, _pool, build_model, max_pool_2x2

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
        fast = _pool(pool, x)
    leaf = x.clone().requires_grad_()
    slow = _pool(pool, leaf)
    assert torch.equal(fast, slow) and "MaxPool2D" in type(slow.grad_fn).__name__  # PyTorch's, for its backward
    slow.sum().backward()
    assert leaf.grad.sum().item() == 4 * 6 * 14 * 14  # one winner per window
    seen = []
    pool.register_forward_hook(lambda *_: seen.append(1))
    with torch.no_grad():
        _pool(pool, x)  # a hooked pool is called, so its hooks run
        assert seen == [1]
        for module, inp in (  # odd sizes (floor mode), other windows and padding keep PyTorch's kernel
            (torch.nn.MaxPool2d(2, 2), torch.randn(2, 3, 7, 9)),
            (torch.nn.MaxPool2d(3, 2), torch.randn(2, 3, 8, 8)),
            (torch.nn.MaxPool2d(2, 2, padding=1), torch.randn(2, 3, 8, 8)),
        ):
            assert torch.equal(_pool(module, inp), module(inp))


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
    assert torch.equal(fast, model(x).detach()) and torch.equal(fast, table_order)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_convolution_over_its_whole_input_is_a_matrix_product_with_the_same_outputs_and_gradients(layout):
    """LeNet-5's third convolution (16×5×5 in, one output pixel) runs as a matrix product: PyTorch's convolution
    gives the same outputs and gradients, up to the order of the sums."""
    torch.manual_seed(0)
    ours = Conv2d(16, 120, 5)
    plain = torch.nn.Conv2d(16, 120, 5)
    plain.load_state_dict(ours.state_dict())
    fmt = LAYOUTS[layout]
    ours, plain = ours.to(memory_format=fmt), plain.to(memory_format=fmt)
    x = torch.randn(8, 16, 5, 5).contiguous(memory_format=fmt)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, out_b = ours(a), plain(b)
    assert ours._covers(x) and "Addmm" in type(out_a.grad_fn.next_functions[0][0]).__name__
    torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-5)
    assert out_a.shape == (8, 120, 1, 1)
    grad = torch.randn_like(out_b)
    out_a.backward(grad)
    out_b.backward(grad)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.bias.grad, plain.bias.grad, rtol=1e-5, atol=1e-5)


def test_other_convolutions_keep_pytorchs_kernel():
    x = torch.randn(2, 6, 14, 14)
    for conv in (Conv2d(6, 16, 5), Conv2d(6, 16, 14, padding=1), Conv2d(6, 6, 14, groups=2)):
        assert not conv._covers(x)
        torch.testing.assert_close(
            conv(x),
            torch.nn.functional.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, groups=conv.groups),
        )


@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
def test_a_training_pass_pools_before_the_relu_with_identical_results_and_gradients(precision):
    model = build_model(ModelConfig(), seed=2).to(memory_format=torch.channels_last)
    x = torch.rand(48, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (48,))
    seen = []
    for forward in (model, lambda t: torch.nn.Sequential.forward(model, t)):  # ours, then the layer table's order
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == torch.bfloat16):
            out = forward(x)
        F.cross_entropy(out.float(), y).backward()
        seen.append([out.detach(), *(p.grad.clone() for p in model.parameters())])
    assert all(torch.equal(a, b) for a, b in zip(*seen, strict=True))


def test_pooling_first_only_where_it_changes_nothing():
    relu_max = build_model(ModelConfig(), seed=0)
    assert relu_max.pool_first == {"act1": "pool1", "act2": "pool2"}  # act3 has no pooling after it
    assert _commutes(relu_max.act1, relu_max.pool1)
    for activation in ("gelu", "leaky_relu"):  # gelu is not monotonic; a leaky ReLU's rounding makes new ties
        other = build_model(ModelConfig(activation=activation), seed=0)
        assert not _commutes(other.act1, other.pool1)
    avg = build_model(ModelConfig().with_pooling("avg"), seed=0)
    assert not _commutes(avg.act1, avg.pool1)
    sizes = []  # a hook on the activation sees what the layer table promises, even while training
    hook = relu_max.act1.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape)))
    relu_max.train()(torch.rand(2, 1, 28, 28)).sum().backward()
    hook.remove()
    assert sizes == [(2, 6, 28, 28)] and _commutes(relu_max.act1, relu_max.pool1)


def test_the_article_baseline_is_the_same_network_in_plain_pytorch_modules():
    """benchmarks/article_recipe.py races CNN Lab without its speed-ups: same architecture and starting weights,
    plain nn.Conv2d / nn.MaxPool2d, layer-table order."""
    from benchmarks.article_recipe import article_lenet5

    torch.manual_seed(0)
    article = article_lenet5()
    torch.manual_seed(0)
    ours = build_model()
    assert all(torch.equal(a, b) for a, b in zip(article.parameters(), ours.parameters(), strict=True))
    assert Conv2d not in {type(m) for m in article}
    x = torch.rand(16, 1, 28, 28)
    torch.testing.assert_close(article(x), ours(x), rtol=1e-5, atol=1e-5)
