"""The training loop learns, is reproducible, stops on request and survives divergence."""

import math
from dataclasses import replace

import pytest

from cnn_core.config import ModelConfig, RunConfig, TrainConfig
from cnn_core.model import build_model
from cnn_core.runs import Status
from cnn_core.training.loop import EXPLODED, STUCK_AFTER_STEPS, Event, diverged, pick_device, train


def _run(**kw) -> RunConfig:
    base = dict(epochs=2, batch_size=64, lr=3e-3, device="cpu", log_every=5)
    return RunConfig(train=TrainConfig(**{**base, **kw}))


def test_training_learns_and_reports_events(small_data):
    events = []
    result = train(_run(epochs=3), small_data, on_event=events.append)
    assert result.status == "completed" and result.epochs_done == 3
    assert result.test_accuracy > 0.6  # 10 classes: chance is 0.1
    kinds = [e.kind for e in events]
    assert kinds.count("epoch") == 3 and kinds[-1] == "end" and "step" in kinds
    epoch_losses = [e.loss for e in events if e.kind == "epoch"]
    assert epoch_losses[-1] < epoch_losses[0]
    assert all(e.images_per_s > 0 and e.lr > 0 for e in events if e.kind == "epoch")


def test_same_config_and_seed_on_cpu_give_the_same_metrics(small_data):
    a = train(_run(seed=7), small_data)
    b = train(_run(seed=7), small_data)
    c = train(_run(seed=8), small_data)
    assert [e.loss for e in a.history] == [e.loss for e in b.history]
    assert a.test_accuracy == b.test_accuracy
    assert [e.loss for e in a.history] != [e.loss for e in c.history]


def test_stop_request_ends_the_run_early(small_data):
    calls = []

    def stop_after_three_steps() -> bool:
        calls.append(1)
        return len(calls) >= 3

    result = train(_run(epochs=5), small_data, should_stop=stop_after_three_steps)
    assert result.status == "stopped" and result.epochs_done == 0 and len(calls) == 3
    assert result.test_accuracy is not None  # the stopped model is still evaluated


def test_huge_learning_rate_ends_as_diverged_with_a_clear_message(small_data):
    result = train(_run(optimizer="sgd", lr=10.0, momentum=0.99, schedule="constant", augment=False), small_data)
    assert result.status == "diverged"
    assert "learning rate" in result.error and "\n" not in result.error


def test_every_optimizer_and_schedule_runs(small_data):
    for optimizer, schedule in (("sgd", "cosine"), ("adam", "constant"), ("adamw", "onecycle")):
        result = train(_run(epochs=1, optimizer=optimizer, schedule=schedule), small_data)
        assert result.status == "completed" and math.isfinite(result.history[0].loss)


def test_auto_device_is_cpu_without_a_gpu():
    import torch

    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
    assert pick_device("cpu").type == "cpu"


def test_max_and_avg_runs_with_one_seed_start_from_the_same_weights_and_data_order(small_data):
    """Pooling has no weights, so the pair shares its initial weights; data order and augmentation
    come from generators seeded by the seed alone, so the first recorded steps see the same batches."""
    import torch

    from cnn_core.config import ModelConfig

    max_model, avg_model = build_model(ModelConfig(), seed=5), build_model(ModelConfig().with_pooling("avg"), seed=5)
    for (name, a), (_, b) in zip(max_model.state_dict().items(), avg_model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    seen = {}
    for pool in ("max", "avg"):
        run = _run(seed=5, epochs=1)
        run = RunConfig(model=run.model.with_pooling(pool), train=run.train)
        batches = []
        original = torch.Tensor.__getitem__

        def spy(self, idx, _batches=batches, _original=original):
            if self is small_data.train_y or (
                isinstance(idx, torch.Tensor)
                and idx.dtype == torch.long
                and self.dtype == torch.long
                and self.ndim == 1
            ):
                _batches.append(idx.clone())
            return _original(self, idx)

        torch.Tensor.__getitem__ = spy
        try:
            train(run, small_data)
        finally:
            torch.Tensor.__getitem__ = original
        seen[pool] = batches
    assert seen["max"] and all(torch.equal(a, b) for a, b in zip(seen["max"], seen["avg"], strict=True))


def test_rgb_32x32_inputs_train_end_to_end():
    import torch

    from cnn_core.config import ConvBlock, ModelConfig
    from cnn_core.data import Dataset

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.arange(96) % 10
    data = Dataset("synthetic", [str(i) for i in range(10)], x[:64], y[:64], x[64:80], y[64:80], x[80:], y[80:], "test")
    model = ModelConfig(in_channels=3, input_size=32, conv=(ConvBlock(8, 3, padding="same"), ConvBlock(16, 3)))
    result = train(RunConfig(model=model, train=_run(epochs=1).train), data)
    assert result.status == "completed" and result.model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_a_forced_gpu_that_is_not_there_is_a_clear_error():
    import pytest
    import torch

    from cnn_core.errors import InvalidConfig

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(InvalidConfig, match="device 'cuda' was asked for but this machine has none"):
        pick_device("cuda")


def _balanced(bundled, every: int = 8):
    """Every 8th training digit: all ten classes (the sample is sorted by class, so a prefix is not)."""
    return replace(bundled, train_x=bundled.train_x[::every], train_y=bundled.train_y[::every])


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, train_kw, cause",
    [
        ({"input_std": 0.001}, {"optimizer": "sgd", "lr": 0.1, "schedule": "constant"}, "input normalisation"),
        ({}, {"optimizer": "adamw", "lr": 0.1, "weight_decay": 1.0, "schedule": "constant"}, "weight decay 1"),
        (
            {},
            {"optimizer": "sgd", "lr": 1e-5, "momentum": 0.0, "schedule": "constant"},
            "learning rate 1e-05 is probably too low",
        ),
    ],
)
def test_training_going_nowhere_ends_diverged_naming_the_likely_cause(bundled, model, train_kw, cause):
    run = RunConfig(
        model=ModelConfig(**model),
        train=TrainConfig(epochs=40, batch_size=32, device="cpu", augment=False, **train_kw),
    )
    result = train(run, _balanced(bundled))
    assert result.status == Status.DIVERGED and result.epochs_done < 40
    assert cause in result.error and "\n" not in result.error


def test_a_loss_that_explodes_is_caught_before_it_becomes_nan():
    run = RunConfig(train=TrainConfig(lr=0.5, weight_decay=0.0))
    first = Event(
        kind="step",
        epoch=1,
        epochs=1,
        step=20,
        total_steps=100,
        loss=2.3,
        accuracy=0.1,
        lr=0.5,
        images_per_s=1.0,
        elapsed=1.0,
    )
    later = replace(first, step=40, loss=2.3 * (EXPLODED + 1))
    assert diverged(run, first, first.loss) is None
    assert diverged(run, later, first.loss).startswith("loss exploded from 2.3 to 232 at epoch 1, step 40: ")
    assert "learning rate 0.5 is probably too high" in diverged(run, later, first.loss)


@pytest.mark.slow
def test_a_run_that_learns_is_never_called_stuck(bundled):
    run = RunConfig(train=TrainConfig(epochs=12, batch_size=16, device="cpu", log_every=5))  # 348 steps
    result = train(run, _balanced(bundled))
    assert result.status == Status.COMPLETED and result.history[-1].step > STUCK_AFTER_STEPS


def test_the_loop_reads_the_device_once_per_reported_event_not_per_step(small_data):
    """Each read of a tensor's value (.item(), .tolist(), float(), ...) waits for the device; the loop keeps its
    sums on the device and reads them only when it reports (every log_every steps, each epoch, the end)."""
    import os
    import sys

    import torch
    from torch.overrides import TorchFunctionMode

    import cnn_core.training.loop as train_module

    tensor_py, reads_by = os.path.join(os.path.dirname(torch.__file__), "_tensor.py"), []

    class CountReads(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy"):
                frame = sys._getframe(1)  # the reader (float(t) and bool(t) pass through torch/_tensor.py)
                frame = frame.f_back if frame.f_code.co_filename == tensor_py else frame
                if frame.f_code.co_filename == train_module.__file__:
                    reads_by.append(frame.f_code.co_name)
            return func(*args, **(kwargs or {}))

    events = []
    with CountReads():
        result = train(_run(epochs=1, batch_size=10, log_every=20), small_data, on_event=events.append)
    assert result.status == "completed" and result.history[-1].step == 60  # 600 images / 10
    loop_reads = [name for name in reads_by if name != "evaluate"]
    assert "step" not in loop_reads  # the optimizer step itself never waits for the device
    # one read per event (the first step, 3 windows of 20, 1 epoch, the end), plus the class counts of the labels
    assert len(loop_reads) <= len(events) + 1 and len(events) == 1 + 3 + 1 + 1
