"""bf16 autocast only where the device computes it natively, fp32 weights and metrics, reproducible runs."""

import math

import pytest
import torch

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.errors import InvalidConfig
from cnn_core.training.loop import cpu_has_bf16, device_label, pick_precision, run_device_label, train

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16")


def _run(precision: str, epochs: int = 2) -> RunConfig:
    base = dict(batch_size=64, lr=3e-3, device="cpu", log_every=5, seed=3)
    return RunConfig(train=TrainConfig(epochs=epochs, precision=precision, **base))


def test_auto_is_bf16_on_a_cpu_with_native_bf16_and_fp32_on_one_without():
    assert pick_precision("auto", CPU, native_bf16=True) == "bf16"
    assert pick_precision("auto", CPU, native_bf16=False) == "fp32"
    assert pick_precision("auto", CPU) == ("bf16" if cpu_has_bf16() else "fp32")


def test_auto_is_fp32_on_a_gpu_and_bf16_there_only_when_asked_for_on_a_card_that_has_it():
    cuda = torch.device("cuda")  # pick_precision reads no GPU when native_bf16 is given
    assert pick_precision("auto", cuda, native_bf16=True) == "fp32"  # launch-bound: autocast only adds casts
    assert pick_precision("bf16", cuda, native_bf16=True) == "bf16"
    assert pick_precision("fp16", cuda, native_bf16=False) == "fp16"
    with pytest.raises(InvalidConfig, match="does not compute bf16 natively .it needs an Ampere or newer GPU"):
        pick_precision("bf16", cuda, native_bf16=False)


def test_fp32_is_fp32_everywhere():
    for native in (True, False):
        assert pick_precision("fp32", CPU, native_bf16=native) == "fp32"


def test_forced_bf16_on_a_cpu_without_it_is_a_clear_error_not_a_silent_fallback():
    with pytest.raises(InvalidConfig) as err:
        pick_precision("bf16", CPU, native_bf16=False)
    message = str(err.value)
    assert message.startswith("train.precision: bf16 was asked for but this cpu does not compute bf16 natively")
    assert "AVX-512 BF16" in message and "use 'auto' or 'fp32'" in message and "\n" not in message
    assert pick_precision("bf16", CPU, native_bf16=True) == "bf16"


def test_fp16_is_for_cuda_only():
    with pytest.raises(InvalidConfig, match="train.precision: fp16 runs on CUDA GPUs only, not on cpu"):
        pick_precision("fp16", CPU, native_bf16=True)


def test_the_device_label_names_the_precision_and_the_old_call_still_works():
    assert device_label(CPU) == "cpu"
    assert device_label(CPU, "bf16") == "cpu · bf16"
    assert run_device_label(TrainConfig(device="cpu", precision="fp32")) == "cpu · fp32"
    expected = "cpu · bf16" if cpu_has_bf16() else "cpu · fp32"
    assert run_device_label(TrainConfig(device="cpu")) == expected


@needs_bf16
def test_same_seed_and_precision_give_identical_losses_and_bf16_differs_from_fp32(small_data):
    a, b = train(_run("bf16", epochs=1), small_data), train(_run("bf16", epochs=1), small_data)
    fp32 = train(_run("fp32", epochs=1), small_data)
    assert a.device == "cpu · bf16" and fp32.device == "cpu · fp32"
    assert [e.loss for e in a.history] == [e.loss for e in b.history] and a.test_accuracy == b.test_accuracy
    assert torch.equal(a.test_predictions, b.test_predictions)
    assert [e.loss for e in a.history] != [e.loss for e in fp32.history]  # autocast really ran in bf16


@needs_bf16
def test_a_bf16_run_keeps_fp32_weights_and_learns(small_data):
    result = train(_run("bf16", epochs=3), small_data)
    assert result.status == "completed" and result.test_accuracy > 0.6  # 10 classes: chance is 0.1
    assert all(t.dtype == torch.float32 for t in result.model.state_dict().values())  # checkpoints stay fp32
    assert all(math.isfinite(e.loss) for e in result.history)
