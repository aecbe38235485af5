"""cnn_core.training.optim against torch.optim: the same update rules and schedules, step by step, for every optimizer and
schedule the config offers, and a training process that never imports torch._dynamo (what it is for)."""

import itertools
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from cnn_core.config import ModelConfig
from cnn_core.model import build_model
from cnn_core.training.optim import ONECYCLE_MIN_STEPS, Optimizer, schedule
from tests.conftest import ROOT


def _torch_pair(model, kind: str, sched: str, lr: float, wd: float, momentum: float, total: int):
    """What cnn_core.training.loop used before: torch.optim's optimizer and scheduler for the same settings."""
    params = model.parameters()
    if kind == "sgd":
        opt = torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=momentum, nesterov=momentum > 0)
    else:
        opt = (torch.optim.Adam if kind == "adam" else torch.optim.AdamW)(params, lr=lr, weight_decay=wd)
    if sched == "onecycle" and total >= ONECYCLE_MIN_STEPS:
        return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.25)
    if sched == "cosine":
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _batches(n: int):
    gen = torch.Generator().manual_seed(3)
    return [(torch.rand(16, 1, 28, 28, generator=gen), torch.randint(0, 10, (16,), generator=gen)) for _ in range(n)]


# SGD with momentum 0 too: one-cycle then cycles its momentum (0.95 -> 0.85 -> 0.95), without Nesterov
CASES = list(itertools.product(["sgd", "sgd-no-momentum", "adam", "adamw"], ["onecycle", "cosine", "constant"]))


@pytest.mark.parametrize(("name", "sched"), CASES)
def test_every_optimizer_and_schedule_follows_torch_optim(name, sched):
    kind, total, lr = name.split("-")[0], 24, 0.01 if name.startswith("adam") else 0.05
    wd, momentum = 5e-4, 0.9 if name == "sgd" else 0.0
    ours_model, ref_model = build_model(ModelConfig(), seed=0), build_model(ModelConfig(), seed=0)
    ours = Optimizer(ours_model.parameters(), kind, schedule(sched, lr, total), wd, momentum)
    ref, ref_sched = _torch_pair(ref_model, kind, sched, lr, wd, momentum, total)
    for step, (x, y) in enumerate(_batches(total)):
        group = ref.param_groups[0]
        assert ours.param_groups[0]["lr"] == pytest.approx(group["lr"], rel=1e-9, abs=1e-15), step
        assert ours.param_groups[0]["momentum"] == pytest.approx(group.get("momentum", group.get("betas", [0])[0]))
        for model, opt in ((ours_model, ours), (ref_model, ref)):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        ours.advance()
        ref_sched.step()
        for a, b in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"{kind}/{sched} step {step}")


def test_sgd_without_momentum_is_plain_gradient_descent_and_one_cycle_turns_momentum_on_as_torch_does():
    """OneCycleLR cycles SGD's momentum between 0.95 and 0.85 even when the config's momentum is 0; without
    one-cycle, momentum 0 is plain gradient descent: w <- w - lr * grad, exactly."""
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = Optimizer([w], "sgd", schedule("constant", 0.5, 5))
    w.grad = torch.tensor([0.25, 0.5])
    opt.step()
    assert w.tolist() == [0.875, -2.25] and "momentum" not in opt.state
    cycled = Optimizer([w], "sgd", schedule("onecycle", 0.5, 40))
    assert cycled.param_groups[0]["momentum"] == pytest.approx(0.95)


def test_a_parameter_without_a_gradient_is_left_alone():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    for kind in ("sgd", "adam", "adamw"):
        opt = Optimizer([a, b], kind, schedule("constant", 0.1, 10), weight_decay=0.1, momentum=0.9)
        a.grad, b.grad = torch.ones(3), None
        before = b.detach().clone()
        opt.step()
        assert torch.equal(b, before) and not torch.equal(a, before)
        a.grad = None


def test_the_rate_is_that_of_the_next_step_and_an_unknown_optimizer_is_refused():
    opt = Optimizer([torch.nn.Parameter(torch.zeros(1))], "adamw", schedule("onecycle", 0.01, 100))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 / 25)  # one-cycle starts at max_lr / 25
    for _ in range(24):
        opt.step()
        opt.advance()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)  # the peak, a quarter of the way
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        Optimizer([], "rmsprop", schedule("constant", 0.1, 1))


def test_a_step_the_grad_scaler_skips_leaves_the_weights_but_the_schedule_moves_on():
    """fp16 training: GradScaler skips the update when gradients overflow; the rate still follows the batch count
    (as an LRScheduler stepped every batch does), and Adam's bias correction counts only real updates."""
    w = torch.nn.Parameter(torch.ones(4))
    ref_w = torch.nn.Parameter(torch.ones(4))
    ours = Optimizer([w], "adamw", schedule("onecycle", 0.01, 20))
    ref = torch.optim.AdamW([ref_w], lr=0.01, weight_decay=0.0)
    ref_sched = torch.optim.lr_scheduler.OneCycleLR(ref, max_lr=0.01, total_steps=20, pct_start=0.25)
    scaler, ref_scaler = torch.amp.GradScaler("cpu", init_scale=2.0), torch.amp.GradScaler("cpu", init_scale=2.0)
    for step in range(6):
        for param, opt, sc in ((w, ours, scaler), (ref_w, ref, ref_scaler)):
            opt.zero_grad()
            sc.scale((param * param).sum() * (float("inf") if step == 2 else 1.0)).backward()
            before = param.detach().clone()
            sc.step(opt)
            sc.update()
            assert torch.equal(param, before) == (step == 2)  # the overflowing step changes nothing
        ours.advance()
        ref_sched.step()
        assert ours.param_groups[0]["lr"] == pytest.approx(ref.param_groups[0]["lr"])
        torch.testing.assert_close(w, ref_w)
    assert ours.updates == [5]


def test_a_training_process_never_imports_torch_dynamo():
    """The point of cnn_core.training.optim: torch.optim's optimizers import torch._dynamo (0.9-1.8 s here) when built.
    A run on a folder of IDX files (no torchvision involved) must finish without it."""
    code = (
        "import sys\n"
        "from cnn_core.config import RunConfig, TrainConfig\n"
        "from cnn_core.data import load_dataset\n"
        "from cnn_core.data.builtin import BUNDLED_DIR\n"
        "from cnn_core.training.loop import train\n"
        "data = load_dataset(data_dir=BUNDLED_DIR)\n"
        "result = train(RunConfig(train=TrainConfig(epochs=1, batch_size=500)), data)\n"
        "print(result.status, result.test_accuracy is not None, 'torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["completed", "True", "False"]
