"""Probing a network: filter grids, feature maps with the layer table's shapes, the confusion
matrix and the models a page can offer."""

import numpy as np
import pytest
import torch

from cnn_core import probe
from cnn_core.checkpoint import load_checkpoint, save_checkpoint
from cnn_core.compare import confusion_matrix
from cnn_core.config import ConvBlock, ModelConfig, RunConfig
from cnn_core.model import build_model
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


def test_filter_change_is_zero_for_the_first_epoch_and_positive_after(tmp_path):
    paths = [save_checkpoint(tmp_path / f"epoch_{i}.safetensors", build_model(seed=i), ModelConfig()) for i in (1, 2)]
    change = probe.filter_change(paths, "conv1")
    assert list(change["epoch"]) == [1, 2]
    assert change["relative change"].iloc[0] == 0 and change["relative change"].iloc[1] > 0.5


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
    }
    assert len(choices) == 3
