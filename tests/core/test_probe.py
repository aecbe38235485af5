"""Probing a network: filter grids, feature maps with the layer table's shapes, the confusion
matrix and the models a page can offer."""

import numpy as np
import pytest
import torch

from cnn_core.compare import confusion_matrix
from cnn_core.config import ConvBlock, ModelConfig, RunConfig, TrainConfig
from cnn_core.explain import filters as probe
from cnn_core.model import build_model
from cnn_core.model.checkpoint import load_checkpoint, save_checkpoint
from cnn_core.runs import RunStore, Status
from cnn_core.shapes import layer_table


@pytest.fixture(scope="module")
def model():
    return load_checkpoint("lenet5-mnist-max").model


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(),
        ModelConfig().with_pooling("avg"),
        ModelConfig(
            activation="tanh", conv=(ConvBlock(8, 3, stride=2, padding=1, pool="none"), ConvBlock(4, 3, pool="avg"))
        ),
    ],
    ids=["lenet5-max", "lenet5-avg", "strided-tanh"],
)
def test_feature_maps_follow_the_layer_table_in_network_order(config):
    model = build_model(config, seed=0).eval()
    maps = probe.feature_maps(model, torch.rand(1, 1, 28, 28))
    table = {row.name: row.output_shape for row in layer_table(config) if row.type in ("conv", "pool")}
    expected = [
        name
        for name, _ in model.named_children()
        if name.startswith(("conv", "act", "pool")) and not name.startswith("act_fc")
    ]
    assert list(maps) == expected
    for name, array in maps.items():
        conv_name = name.replace("act", "conv")  # an activation keeps its conv's shape
        assert array.shape == table[conv_name if name.startswith("act") else name], name
    assert probe.feature_shapes(model) == {name: array.shape for name, array in maps.items()}
    assert not any(m._forward_hooks for m in model.modules())  # hooked a copy, never the shared model


def test_relu_feature_maps_are_non_negative_and_max_pooling_takes_the_block_maximum(model):
    maps = probe.feature_maps(model, torch.rand(1, 1, 28, 28))
    assert (maps["act1"] >= 0).all() and (maps["conv1"] < 0).any()
    act = torch.as_tensor(maps["act1"])
    assert np.allclose(maps["pool1"], torch.nn.functional.max_pool2d(act, 2).numpy())


def test_filter_grid_has_one_tile_per_output_channel_on_a_shared_symmetric_scale(model):
    first = probe.filter_grid(model, "conv1")
    assert first.tiles.shape == (6, 5, 5) and first.view == "the only input channel"
    assert first.scale == pytest.approx(np.abs(first.tiles).max())
    weight = model.conv2.weight.detach().numpy()
    summary = probe.filter_grid(model, "conv2")
    assert summary.tiles.shape == (16, 5, 5) and np.allclose(summary.tiles, weight.mean(axis=1))
    assert summary.view == "mean over 6 input channels"
    one = probe.filter_grid(model, "conv2", in_channel=2)
    assert np.array_equal(one.tiles, weight[:, 2]) and one.view == "input channel 3 of 6"
    with pytest.raises(ValueError, match="conv2: input channel 6 out of range 0..5"):
        probe.filter_grid(model, "conv2", in_channel=6)
    with pytest.raises(KeyError, match="no layer 'conv9'"):
        probe.filter_grid(model, "conv9")


def test_filter_frame_lays_tiles_out_without_overlap(model):
    grid = probe.filter_grid(model, "conv3")
    frame = probe.filter_frame(grid)
    assert len(frame) == 120 * 25 and frame["filter"].nunique() == 120
    assert not frame.duplicated(["x", "y"]).any()
    assert np.allclose(frame["weight"].to_numpy(), grid.tiles.ravel())


def test_weight_histogram_counts_every_weight(model):
    hist = probe.weight_histogram(model, "conv2", bins=30)
    assert len(hist) == 30 and hist["count"].sum() == model.conv2.weight.numel()
    assert (hist["start"] < hist["end"]).all()
    assert probe.conv_layers(model) == ["conv1", "conv2", "conv3"]


def test_filter_change_starts_at_epoch_two_because_epoch_one_has_nothing_to_compare_with(tmp_path):
    paths = [
        save_checkpoint(tmp_path / f"epoch_{i}.safetensors", build_model(seed=i), ModelConfig()) for i in (1, 2, 3)
    ]
    change = probe.filter_change(paths, "conv1")
    assert list(change.columns) == ["epoch", "relative change"]
    assert list(change["epoch"]) == [2, 3] and (change["relative change"] > 0.5).all()  # other seeds: far apart
    every = probe.filter_changes(paths)
    assert sorted(every["layer"].unique()) == ["conv1", "conv2", "conv3"] and len(every) == 3 * 2
    conv1 = every[every["layer"] == "conv1"].drop(columns="layer").reset_index(drop=True)
    assert conv1.equals(change.reset_index(drop=True))
    assert probe.filter_change(paths[:1], "conv1").empty  # one epoch: nothing moved yet, and no 0 % either
    with pytest.raises(KeyError, match="no layer 'conv9'"):
        probe.filter_change(paths, "conv9")


def test_confusion_matrix_and_misclassified_digits_from_the_test_split(model, bundled):
    accuracy, predictions = probe.split_predictions(model, bundled.test_x, bundled.test_y)
    assert not model.training  # the shared model is never switched to train mode
    labels = bundled.test_y.numpy()
    counts = confusion_matrix(labels, predictions, 10)
    assert counts.sum() == len(labels) and np.trace(counts) / len(labels) == pytest.approx(accuracy)
    wrong = probe.misclassified(labels, predictions)
    assert len(wrong) == len(labels) - np.trace(counts)
    true, pred = np.unravel_index(np.argmax(counts - np.diag(np.diag(counts))), counts.shape)
    cell = probe.misclassified(labels, predictions, true=true, predicted=pred)
    assert len(cell) == counts[true, pred] and (labels[cell] == true).all() and (predictions[cell] == pred).all()


def test_digit_at_and_as_batch_give_the_models_input(bundled):
    image = probe.digit_at(bundled.test_x, 3)
    assert image.shape == (28, 28) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    assert probe.as_batch(image).shape == (1, 1, 28, 28)
    assert probe.as_batch(image, in_channels=3).shape == (1, 3, 28, 28)


def test_model_choices_list_bundled_models_first_then_finished_runs_with_a_checkpoint():
    store = RunStore()
    done = store.create(RunConfig(), dataset="mnist", name="finished")
    path = save_checkpoint(store.run_dir(done) / "model.safetensors", build_model(seed=0), ModelConfig())
    store.claim(done)
    store.finish(done, Status.COMPLETED, checkpoint=str(path))
    store.create(RunConfig(), dataset="mnist", name="still queued")
    choices = probe.model_choices(store)
    assert list(choices)[:2] == ["lenet5-mnist-max", "lenet5-mnist-avg"]
    assert choices[f"run: finished ({done})"] == {
        "source": str(path),
        "run_id": done,
        "dataset": "mnist",
        "data_dir": None,
        "accuracy": None,
    }
    assert len(choices) == 3


def _finished_run(
    store: RunStore, name: str, pooling: str = "max", seed: int = 0, group: str | None = "g1", accuracy=None
) -> str:
    """A completed run with a final checkpoint and two epoch checkpoints."""
    config = RunConfig(model=ModelConfig().with_pooling(pooling), train=TrainConfig(seed=seed))
    run_id = store.create(config, dataset="mnist", name=name, group_id=group)
    for epoch in (1, 2):
        path = store.run_dir(run_id) / "epochs" / f"epoch_{epoch:03d}.safetensors"
        save_checkpoint(path, build_model(config.model, seed=epoch), config.model)
    final = save_checkpoint(store.run_dir(run_id) / "model.safetensors", build_model(config.model), config.model)
    store.claim(run_id)
    store.finish(run_id, Status.COMPLETED, checkpoint=str(final), test_accuracy=accuracy)
    return run_id


def test_a_runs_pooling_twin_is_the_same_group_and_seed_with_the_other_pooling_finished_with_weights():
    store = RunStore()
    chosen = _finished_run(store, "max seed 0")
    twin = _finished_run(store, "avg seed 0", pooling="avg")
    _finished_run(store, "avg seed 1", pooling="avg", seed=1)  # another seed
    _finished_run(store, "avg elsewhere", pooling="avg", group="g2")  # another comparison
    _finished_run(store, "max again", pooling="max")  # not the twin of "max seed 0": the same pooling
    store.create(RunConfig(model=ModelConfig().with_pooling("avg")), dataset="mnist", group_id="g1")  # queued
    runs = store.list()
    assert probe.pooling_twin(runs, chosen).id == twin
    assert probe.pooling_twin(runs, twin).name == "max again"  # two max runs of seed 0: the newest wins
    alone = _finished_run(store, "no group", group=None)
    assert probe.pooling_twin(store.list(), alone) is None
    assert probe.pooling_twin(store.list(), "20200101-000000-abcdef") is None


def test_pooling_checkpoints_are_the_run_and_its_twin_at_the_same_epoch_else_the_bundled_pair():
    store = RunStore()
    chosen = _finished_run(store, "mine")
    twin = _finished_run(store, "mine avg", pooling="avg")
    pair = probe.pooling_checkpoints(store, chosen)
    assert list(pair) == ["mine (max)", "mine avg (avg)"]  # max first, like the bundled pair
    assert list(pair.values()) == [store.get(chosen).checkpoint, store.get(twin).checkpoint]
    at_epoch = probe.pooling_checkpoints(store, twin, epoch=1)  # asked from the avg side: still max first
    assert list(at_epoch) == ["mine (max, epoch 1)", "mine avg (avg, epoch 1)"]
    assert list(at_epoch.values()) == [str(store.epoch_checkpoints(r)[0]) for r in (chosen, twin)]
    assert [load_checkpoint(p).config.conv[0].pool for p in at_epoch.values()] == ["max", "avg"]
    lonely = _finished_run(store, "lonely", group="g9")
    bundled = {"lenet5-mnist-max": "lenet5-mnist-max", "lenet5-mnist-avg": "lenet5-mnist-avg"}
    assert probe.pooling_checkpoints(store, lonely) == probe.pooling_checkpoints(store, None) == bundled
    assert probe.pooling_checkpoints(None, None) == bundled  # a broken run store


def test_model_pickers_open_on_the_best_finished_run_or_the_bundled_default():
    store = RunStore()
    assert probe.default_model(probe.model_choices(store)) == "lenet5-mnist-max"
    better = _finished_run(store, "better", accuracy=0.97)
    newer = _finished_run(store, "newer", accuracy=0.91)  # the newest is not the best: not the default
    store.create(RunConfig(), dataset="mnist", name="still queued")
    choices = probe.model_choices(store)
    assert probe.default_model(choices) == f"run: better ({better})" != f"run: newer ({newer})"
    assert probe.default_model(probe.model_choices(None)) == "lenet5-mnist-max"


def test_a_sweeps_trials_are_one_entry_best_first_and_its_best_can_be_the_default():
    from cnn_core.config.sweep import SweepConfig

    store = RunStore()
    sweep = store.sweeps.create(SweepConfig.from_dict({"space": {"train.lr": {"grid": [0.01, 0.1]}}, "name": "lr"}))
    _finished_run(store, "alone", group=None, accuracy=0.95)
    trials = [_finished_run(store, f"t{i}", group=sweep, accuracy=a) for i, a in enumerate((0.90, 0.98, 0.40))]
    choices = probe.model_choices(store)
    assert list(choices)[2:] == [f"run: alone ({store.list()[-1].id})", "sweep: lr (3 trials)"]
    entry = choices["sweep: lr (3 trials)"]
    assert [c["run_id"] for c in entry["trials"].values()] == [trials[1], trials[0], trials[2]]  # best first
    assert entry["run_id"] == trials[1]
    assert probe.default_model(choices) == "sweep: lr (3 trials)"  # it holds the best run of all


def test_a_fresh_rgb_network_has_colour_pictures_of_its_filters():
    colour = probe.colour_filters(build_model(ModelConfig(in_channels=3, input_size=32), seed=0), "conv1")
    assert colour.pictures.shape == (6, 5, 5, 3) and colour.pictures.min() >= 0 and colour.pictures.max() <= 1
    assert all(abs(abs(p - 0.5).max() - 0.5) < 1e-6 for p in colour.pictures)  # each filter fills its own scale
    with pytest.raises(ValueError, match="conv2 reads 6 channels"):
        probe.colour_filters(build_model(ModelConfig(in_channels=3, input_size=32)), "conv2")
