"""The training loop learns, is reproducible, stops on request and survives divergence."""

import math

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.train import pick_device, train


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
