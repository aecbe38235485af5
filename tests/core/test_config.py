"""Configs are frozen, validated, and survive a JSON round trip unchanged."""

import dataclasses
import json

import pytest

from cnn_core.config import ConvBlock, ModelConfig, RunConfig, TrainConfig, load_config
from cnn_core.errors import InvalidConfig


def test_default_is_the_articles_lenet5_and_round_trips_through_json():
    run = RunConfig()
    data = json.loads(run.to_json())
    assert data["model"]["conv"][0] == {
        "out_channels": 6,
        "kernel_size": 5,
        "stride": 1,
        "padding": 2,
        "pool": "max",
        "pool_size": 2,
        "pool_stride": 2,
    }
    assert data["model"]["fc"] == [84] and data["model"]["activation"] == "relu"
    assert RunConfig.from_json(run.to_json()) == run


def test_issue_shaped_json_with_same_and_valid_padding_loads(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(
        json.dumps(
            {
                "model": {
                    "in_channels": 3,
                    "input_size": 32,
                    "activation": "gelu",
                    "fc": [64],
                    "conv": [
                        {"out_channels": 8, "kernel_size": 3, "padding": "same"},
                        {"out_channels": 16, "kernel_size": 3, "padding": "valid", "pool": "avg"},
                    ],
                },
                "train": {"optimizer": "sgd", "lr": 0.01},
            }
        )
    )
    run = load_config(path)
    assert run.model.conv[0].padding == "same" and run.model.conv[1].pool == "avg"
    assert run.train.optimizer == "sgd" and run.train.epochs == TrainConfig().epochs


@pytest.mark.parametrize(
    "data, message",
    [
        ({"model": {"activation": "swish"}}, "activation must be one of"),
        ({"model": {"conv": [{"kernel": 3}]}}, "conv1: unknown key"),
        ({"train": {"optimizer": "lbfgs"}}, "optimizer must be one of"),
        ({"train": {"lr": -1}}, "learning rate"),
        ({"train": {"batch_size": 0}}, "batch_size must be a positive integer"),
        ({"extra": {}}, "unknown section"),
    ],
)
def test_bad_config_values_give_one_clear_line(data, message):
    with pytest.raises(InvalidConfig, match=message) as err:
        RunConfig.from_dict(data)
    assert "\n" not in str(err.value)


def test_config_file_that_is_not_json_or_missing_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{model: ")
    with pytest.raises(InvalidConfig, match="not valid JSON"):
        load_config(bad)
    with pytest.raises(InvalidConfig, match="cannot read config"):
        load_config(tmp_path / "missing.json")


def test_with_pooling_changes_only_pooling():
    cfg = ModelConfig()
    avg = cfg.with_pooling("avg")
    assert [b.pool for b in avg.conv] == ["avg", "avg", "none"]
    assert [b.out_channels for b in avg.conv] == [b.out_channels for b in cfg.conv]


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ConvBlock().stride = 2  # type: ignore[misc]
