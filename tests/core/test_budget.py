"""A run's memory and disk are estimated from its config and refused before anything is allocated."""

import shutil
from dataclasses import replace

import pytest
import torch

from cnn_core.config import MAX_FC_WIDTH, ConvBlock, ModelConfig, RunConfig, TrainConfig, budget
from cnn_core.config.budget import Limits, check, check_model, default_limits, estimate, forward_elements
from cnn_core.errors import InvalidConfig, OverBudget
from cnn_core.model import build_model, count_params

ROOMY = Limits(memory_bytes=64 * budget.GB, disk_bytes=64 * budget.GB)
# 4,096 filters on a 512×512 input flatten to 2**30 features; 65,536 wide after them is 7×10¹³ weights
HUGE = ModelConfig(
    in_channels=1,
    input_size=512,
    conv=(ConvBlock(out_channels=4096, kernel_size=1, pool="none"),),
    fc=(MAX_FC_WIDTH,),
)


def _run(model: ModelConfig | None = None, **train) -> RunConfig:
    return RunConfig(model=model or ModelConfig(), train=TrainConfig(**{"device": "cpu", **train}))


def test_lenet5_estimate_counts_the_real_parameters_and_reads_as_one_line():
    cost = estimate(_run())
    assert cost.params == count_params(build_model()) == 61_706
    assert cost.param_bytes == 4 * 61_706
    assert cost.weights_and_optimizer_bytes == 4 * cost.param_bytes  # AdamW: weights, grads, two moments
    assert cost.describe().startswith("61,706 parameters · about ") and "disk for 40 epochs" in cost.describe()


@pytest.mark.parametrize(
    "model",
    [
        ModelConfig(),
        ModelConfig().with_pooling("avg"),
        ModelConfig(in_channels=3, input_size=32, fc=(120, 84), conv=(ConvBlock(8, 3, padding="same"),)),
        ModelConfig(activation="gelu", fc=(), conv=(ConvBlock(4, 3, stride=2, pool="none"), ConvBlock(8, 3))),
    ],
)
def test_forward_elements_are_what_pytorchs_layers_really_output(model):
    net, counted = build_model(model), []
    for name, module in net.named_children():
        if name != "flatten":  # a view of pool's output: no memory of its own
            module.register_forward_hook(lambda m, i, out: counted.append(out.numel()))
    net(torch.zeros(2, model.in_channels, model.input_size, model.input_size))
    assert forward_elements(model) * 2 == sum(counted)


def test_optimizer_state_and_batch_size_and_dataset_raise_the_memory_estimate():
    optimizers = [("adamw", 0.9), ("sgd", 0.9), ("sgd", 0)]
    adamw, sgd, plain_sgd = (estimate(_run(optimizer=o, momentum=m)) for o, m in optimizers)
    assert adamw.weights_and_optimizer_bytes > sgd.weights_and_optimizer_bytes > plain_sgd.weights_and_optimizer_bytes
    assert estimate(_run(batch_size=4096)).activation_bytes > 10 * estimate(_run(batch_size=128)).activation_bytes
    with_data = estimate(_run(), train_images=60_000)
    assert with_data.dataset_bytes >= 60_000 * 28 * 28
    assert with_data.training_memory_bytes == estimate(_run()).training_memory_bytes + with_data.dataset_bytes


def test_disk_estimate_grows_with_epochs():
    costs = [estimate(_run(epochs=e)).checkpoint_disk_bytes for e in (1, 10, 100, 1000)]
    assert costs == sorted(costs) and costs[-1] > 100 * costs[0]
    one = estimate(_run()).checkpoint_bytes
    # one per epoch plus the final model, and the training state: weights and AdamW's two moments
    assert 11 * one + 3 * (one - budget.CHECKPOINT_HEADER_BYTES) < costs[1] < 11 * one + 3 * one + 50_000


def test_a_huge_model_is_refused_without_building_it(monkeypatch):
    def no_layers(*args, **kwargs):
        raise AssertionError("a layer was built")

    monkeypatch.setattr(torch.nn.Linear, "__init__", no_layers)
    monkeypatch.setattr(torch.nn.Conv2d, "__init__", no_layers)
    with pytest.raises(OverBudget) as err:
        check(_run(HUGE), ROOMY)
    message = str(err.value)
    assert message.startswith("this run needs about ") and " TB of memory (batch 128: activations " in message
    assert "the limit is 64.0 GB (set CNN_LAB_MAX_MEMORY_MB to change it)" in message and "\n" not in message
    with pytest.raises(OverBudget, match="this model needs about .* TB of memory to load"):
        check_model(HUGE, ROOMY)


def test_widths_beyond_the_bound_never_reach_the_budget():
    with pytest.raises(InvalidConfig, match=r"^fc1\.width: expected an integer from 1 to 65,536, got 100000000"):
        ModelConfig(fc=(100_000_000,))


def test_a_small_limit_refuses_memory_then_disk_naming_the_numbers():
    small = Limits(memory_bytes=10 * budget.MB, disk_bytes=budget.MB)
    with pytest.raises(OverBudget, match=r"needs about \d+ MB of memory .*the limit is 10 MB"):
        check(_run(), small)
    disk = r"needs about 11 MB of disk \(41 checkpoints of 257 KB.*and the training state.*limit is 1 MB"
    with pytest.raises(OverBudget, match=disk):
        check(_run(), replace(small, memory_bytes=budget.GB))
    assert check(_run(), ROOMY) == estimate(_run())
    assert check_model(ModelConfig(), small) < budget.MB


def test_on_cuda_the_activations_count_against_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    tight_gpu = replace(ROOMY, gpu_memory_bytes=budget.MB)
    with pytest.raises(OverBudget, match=r"of GPU memory \(batch 128: activations .*90% of the GPU.s free memory"):
        check(_run(device="cuda"), tight_gpu)
    check(_run(device="cpu"), tight_gpu)  # a CPU run does not care about the GPU
    tiny_host = replace(tight_gpu, memory_bytes=budget.MB, gpu_memory_bytes=budget.GB)
    check(_run(device="auto"), tiny_host)  # the host only holds the 241 KB of weights
    with pytest.raises(OverBudget, match=r"of memory \(weights 241 KB, dataset 45 MB\); the limit is 1 MB"):
        check(_run(device="cuda"), tiny_host, train_images=60_000)


def test_environment_variables_override_the_limits(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_LAB_MAX_MEMORY_MB", "3")
    monkeypatch.setenv("CNN_LAB_MAX_DISK_MB", " 2048 ")
    assert default_limits(tmp_path / "not" / "yet") == Limits(3 * budget.MB, 2 * budget.GB)
    with pytest.raises(OverBudget, match="the limit is 3 MB"):
        check(_run())


@pytest.mark.parametrize("name", ["CNN_LAB_MAX_MEMORY_MB", "CNN_LAB_MAX_DISK_MB"])
@pytest.mark.parametrize("value", ["lots", "-5", "0", "1.5", "1_000", "1e9", "9" * 40, "12 MB"])
def test_a_bad_variable_is_one_line_naming_it(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidConfig) as err:
        default_limits()
    assert str(err.value).startswith(f"{name}: expected a whole number of megabytes") and "\n" not in str(err.value)


def test_machine_limits_are_a_fraction_of_what_is_free(monkeypatch, tmp_path):
    monkeypatch.delenv("CNN_LAB_MAX_MEMORY_MB", raising=False)
    monkeypatch.delenv("CNN_LAB_MAX_DISK_MB", raising=False)
    limits = default_limits(tmp_path / "runs" / "not-created")
    assert 0 < limits.memory_bytes <= budget.available_memory()
    assert 0 < limits.disk_bytes <= shutil.disk_usage(tmp_path).free
    monkeypatch.setattr(budget, "_meminfo_available", lambda: None)
    monkeypatch.setattr(budget, "_sysconf_available", lambda: None)
    monkeypatch.setattr(budget, "_cgroup_limit", lambda: None)
    assert budget.available_memory() == budget.FALLBACK_AVAILABLE
