"""Comparing runs: the verdict waits for every seed, epoch time leaves out the warm-up, mistakes by confidence."""

from dataclasses import asdict, replace
from types import SimpleNamespace

import pytest

from cnn_core.compare import (
    changed_settings,
    comparison_title,
    confident_mistakes,
    described_changes,
    pooling_comparison,
    pooling_pair,
    steady_epoch_seconds,
    steady_epoch_speed,
)
from cnn_core.config import LENET5_CONV, ModelConfig, RunConfig, TrainConfig
from cnn_core.data import unavailable_reason
from cnn_core.runs import RunStore, Status
from cnn_core.shapes import partial_layer_table

GROUP = "pool-20260101-000000"


def _member(store: RunStore, pool: str, seed: int, status: Status, accuracy: float | None = None) -> str:
    run = pooling_pair(RunConfig(train=TrainConfig(epochs=3)), pool, seed)
    run_id = store.create(run, "mnist", name=f"{pool}-seed{seed}", group_id=GROUP, claim=status is not Status.QUEUED)
    if status.finished:
        store.finish(run_id, status, epochs_done=3, test_accuracy=accuracy, seconds=3.0)
    return run_id


def test_no_winner_is_named_while_a_seed_of_either_pooling_is_still_running():
    store = RunStore()
    ids = [
        _member(store, "max", 0, Status.COMPLETED, 0.99),
        _member(store, "avg", 0, Status.COMPLETED, 0.95),
        _member(store, "max", 1, Status.COMPLETED, 0.99),
        _member(store, "avg", 1, Status.RUNNING),
    ]
    verdict = pooling_comparison(store, ids)["verdict"]
    assert verdict.startswith("Waiting for 1 of 4 runs to finish (max 2/2, avg 1/2) before naming a winner")
    store.finish(ids[-1], Status.COMPLETED, epochs_done=3, test_accuracy=0.95)
    assert "Max pooling is better here" in pooling_comparison(store, ids)["verdict"]


def test_epoch_time_is_the_median_after_the_first_epoch():
    store = RunStore()
    run_id = store.create(RunConfig(), "mnist", claim=True)
    for epoch, elapsed in enumerate([1.62, 2.08, 2.55, 3.00], start=1):  # the first pays the cold start
        store.log_metric(run_id, {"kind": "epoch", "epoch": epoch, "elapsed": elapsed})
    assert abs(steady_epoch_seconds(store, store.get(run_id)) - 0.46) < 1e-9


def test_the_images_per_second_beside_an_epoch_time_come_from_the_same_measurement():
    """3,600 images an epoch in 0.6 s is 6,000 images/s: the two numbers shown side by side cannot disagree."""
    store = RunStore()
    run_id = store.create(RunConfig(), "mnist", claim=True)
    for epoch, elapsed in enumerate([1.2, 1.8, 2.4], start=1):
        images_per_s = 3600 * epoch / elapsed  # as train() reports it: every image so far over the time so far
        store.log_metric(run_id, {"kind": "epoch", "epoch": epoch, "elapsed": elapsed, "images_per_s": images_per_s})
    speed = steady_epoch_speed(store, store.get(run_id))
    assert speed["seconds_per_epoch"] == pytest.approx(0.6) and speed["images_per_s"] == pytest.approx(6000)


def test_the_most_confident_mistakes_come_first():
    predictions = {"labels": [0, 1, 2, 3], "predictions": [0, 2, 1, 0], "confidences": [0.99, 0.51, 0.97, 0.80]}
    assert confident_mistakes(predictions) == [2, 3, 1]
    del predictions["confidences"]  # a run saved before confidences were recorded
    assert confident_mistakes(predictions) == [1, 2, 3]


def test_a_comparison_is_named_by_what_it_compares():
    store = RunStore()
    ids = [_member(store, p, s, Status.QUEUED) for s in (0, 1) for p in ("max", "avg")]
    assert comparison_title([store.get(i) for i in ids]) == "LeNet-5 · max vs avg · 2 seeds · 3 epochs · mnist"
    small = RunConfig(model=ModelConfig(conv=LENET5_CONV[:2]), train=TrainConfig(epochs=1))
    run_id = store.create(small, "fashion-mnist", group_id=GROUP)
    assert (
        comparison_title([store.get(run_id)]) == "2 conv blocks (6-16) · max vs avg · 1 seed · 1 epoch · fashion-mnist"
    )


def test_the_change_that_made_a_layer_impossible_is_named():
    good = ModelConfig()
    conv = (replace(LENET5_CONV[0], kernel_size=3, stride=2), *LENET5_CONV[1:])
    fields = {**good.to_dict(), "conv": conv, "fc": (84,)}
    layers, error = partial_layer_table(SimpleNamespace(**fields))
    assert [l.name for l in layers] == ["conv1", "pool1", "conv2", "pool2"] and str(error).startswith("conv3:")
    raw = {**fields, "conv": [asdict(b) for b in conv], "fc": [84]}
    changes = changed_settings({"model": good.to_dict()}, {"model": raw})
    assert changes == ["model.conv1.kernel_size: 5 → 3", "model.conv1.stride: 1 → 2"]


def test_only_datasets_on_this_machine_count_as_available(tmp_path):
    assert unavailable_reason("mnist", root=tmp_path) is None  # the bundled sample
    assert unavailable_reason("kmnist", root=tmp_path).startswith("kmnist is not on this machine")
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / stem).write_bytes(b"")
    assert unavailable_reason("kmnist", root=tmp_path) is None


def test_a_change_is_described_in_the_train_pages_words():
    before = {"model": RunConfig().model.to_dict(), "train": {"lr": 0.001}}
    after = {"model": {**before["model"], "activation": "tanh"}, "train": {"lr": 0.01}}
    after["model"]["conv"] = [dict(b) for b in before["model"]["conv"]]
    after["model"]["conv"][0]["kernel_size"] = 3
    assert described_changes(before, after) == [
        "activation relu → tanh",
        "conv1 filter size 5 → 3",
        "learning rate 0.001 → 0.01",
    ]
