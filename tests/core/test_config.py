"""Configs are frozen, validated field by field, and survive a JSON round trip unchanged."""

import dataclasses
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_core import config as config_module
from cnn_core.config import (
    CONV_INTEGERS,
    MAX_FC_WIDTH,
    MAX_PADDING,
    MODEL_INTEGERS,
    MODEL_NUMBERS,
    SEED_MAX,
    TRAIN_INTEGERS,
    TRAIN_NUMBERS,
    ConvBlock,
    ModelConfig,
    RunConfig,
    TrainConfig,
    load_config,
)
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


def _config_with(where: str, value: object) -> dict:
    """A config dict whose only non-default value is ``value`` at ``where`` (e.g. 'conv1.stride', 'fc1.width')."""
    section, key = where.split(".")
    if section == "conv1":
        return {"model": {"conv": [{key: value}]}}
    if section == "fc1":
        return {"model": {"fc": [value]}}
    return {section: {key: value}}


NOT_A_NUMBER = ["12", [1], None, {}, math.nan, math.inf, -math.inf, True, False]
INTEGER_FIELDS = (
    [(f"train.{k}", bounds) for k, bounds in TRAIN_INTEGERS.items()]
    + [(f"model.{k}", bounds) for k, bounds in MODEL_INTEGERS.items()]
    + [(f"conv1.{k}", bounds) for k, bounds in CONV_INTEGERS.items()]
    + [("fc1.width", (1, MAX_FC_WIDTH)), ("conv1.padding", (0, MAX_PADDING))]
)
NUMBER_FIELDS = [(f"train.{k}", b) for k, b in TRAIN_NUMBERS.items()] + [
    (f"model.{k}", b) for k, b in MODEL_NUMBERS.items()
]
CHOICE_FIELDS = [
    "train.optimizer",
    "train.schedule",
    "train.device",
    "train.precision",
    "model.activation",
    "conv1.pool",
]
BAD_VALUES = (
    [(where, v) for where, (low, high) in INTEGER_FIELDS for v in NOT_A_NUMBER + [1.5, 2.0, low - 1, high + 1, 2**64]]
    + [(where, v) for where, (low, high, _) in NUMBER_FIELDS for v in NOT_A_NUMBER + [low - 0.5, high + 0.5, 10**400]]
    + [(where, v) for where in CHOICE_FIELDS for v in ["nope", "", 1, None, True, ["relu"], "RELU"]]
    + [("train.amp", v) for v in ["yes", "true", 1, 0, None, [True]]]
    + [("train.augment", v) for v in ["yes", "on", 1, 0, 1.0, None, ["auto"]]]
)


@pytest.mark.parametrize("where, value", BAD_VALUES, ids=[f"{w}={v!r}"[:40] for w, v in BAD_VALUES])
def test_every_field_refuses_a_wrong_type_or_range_in_one_line_naming_it(where, value):
    with pytest.raises(InvalidConfig) as err:
        RunConfig.from_dict(_config_with(where, value))
    message = str(err.value)
    assert message.startswith(f"{where}: expected "), message
    assert "\n" not in message and len(message) < 160


@pytest.mark.parametrize(
    "where, value, message",
    [
        ("train.lr", math.nan, "train.lr: expected a number in (0, 10], got nan"),
        ("conv1.stride", True, "conv1.stride: expected an integer from 1 to 64, got True"),
        ("train.amp", "yes", "train.amp: expected true or false, got 'yes'"),
        ("train.epochs", 1001, "train.epochs: expected an integer from 1 to 1,000, got 1001"),
        ("fc1.width", 10**23 - 1, "fc1.width: expected an integer from 1 to 65,536, got 99999999999999999999999"),
        ("fc1.width", 10**5000, "fc1.width: expected an integer from 1 to 65,536, got an integer of about 5,000"),
        ("conv1.padding", "full", "conv1.padding: expected an integer from 0 to 64, 'same' or 'valid', got 'full'"),
        ("model.activation", "swish", "model.activation: expected one of relu, tanh, sigmoid, gelu, leaky_relu, elu"),
    ],
    ids=["nan-lr", "bool-stride", "yes-amp", "epochs", "wide-fc", "5000-digit-fc", "padding", "activation"],
)
def test_messages_read_section_field_expected_got(where, value, message):
    with pytest.raises(InvalidConfig) as err:
        RunConfig.from_dict(_config_with(where, value))
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("where, bounds", [f for f in INTEGER_FIELDS if f[0].split(".")[0] in ("train", "model")])
def test_integer_bounds_are_inclusive(where, bounds):
    for value in bounds:
        try:
            RunConfig.from_dict(_config_with(where, value))
        except InvalidConfig as err:  # LeNet-5's layers do not fit a 1×1 input: a shape rule, not the range
            assert not str(err).startswith(where), err


def test_seed_max_and_the_next_seed_fit_torchs_generator():
    assert TrainConfig(seed=SEED_MAX).seed == SEED_MAX
    torch.Generator().manual_seed(SEED_MAX + 1)  # the trainer seeds augmentation with seed + 1
    for bad in (-1, SEED_MAX + 1, 2**64, "7", 7.0):
        with pytest.raises(InvalidConfig, match=r"^train\.seed: expected an integer from 0 to "):
            TrainConfig(seed=bad)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"model": {"conv": [{"kernel": 3}]}}, "conv1: unknown key"),
        ({"model": {"conv": [3]}}, "conv1: expected a JSON object, got 3"),
        ({"model": {"conv": []}}, "model.conv: expected a list of 1 to 32 conv blocks"),
        ({"model": {"conv": "conv"}}, "model.conv: expected a list"),
        ({"model": {"fc": 84}}, "model.fc: expected a list of 0 to 16 widths, got 84"),
        ({"model": {"fc": "84"}}, "model.fc: expected a list"),
        ({"model": {"fc": [1] * 17}}, "model.fc: expected a list"),
        ({"model": None}, "model: expected a JSON object, got None"),
        ({"train": [1]}, "train: expected a JSON object, got [1]"),
        ({"model": {"conv": [{"stride": 2, "padding": "same"}]}}, "conv1: 'same' padding needs stride 1"),
        ({"extra": {}}, "config: unknown section"),
    ],
)
def test_bad_structure_gives_one_clear_line(data, message):
    with pytest.raises(InvalidConfig) as err:
        RunConfig.from_dict(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_python_objects_of_the_wrong_kind_are_refused_too():
    with pytest.raises(InvalidConfig, match=r"^model\.fc: expected a list"):
        ModelConfig(fc=84)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig, match=r"^conv1: expected a conv block"):
        ModelConfig(conv=({"out_channels": 6},))  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig, match=r"^train: expected a TrainConfig"):
        RunConfig(train={"lr": 1})  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
ALL_FIELDS = [w for w, _ in INTEGER_FIELDS + NUMBER_FIELDS] + CHOICE_FIELDS + ["train.amp", "train.augment"]


@settings(max_examples=300, deadline=None)
@given(where=st.sampled_from(ALL_FIELDS), value=json_values)
def test_any_json_value_in_any_field_is_accepted_or_refused_as_invalid_config(where, value):
    try:
        run = RunConfig.from_dict(_config_with(where, value))
    except InvalidConfig as err:
        assert "\n" not in str(err)
    else:
        assert RunConfig.from_json(run.to_json()) == run


@pytest.mark.parametrize(
    "content, message",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests 100000 levels deep"),
        (b'{"train": {"epochs": 1' + b" " * (2 * 1024 * 1024) + b"}}", "bytes of JSON; at most"),
        (b'{"train": {"device": "\xff\xfe"}}', "is not UTF-8 text"),
        (b"{model: ", "is not valid JSON"),
        (b"[1, 2]", "config: expected a JSON object with 'model' and/or 'train', got [1, 2]"),
        (b"null", "config: expected a JSON object"),
        (b'{"train": {"seed": ' + b"7" * 5000 + b"}}", "holds a number too long to read"),
        (b'{"train": {"lr": NaN}}', "train.lr: expected a number in (0, 10], got nan"),
    ],
    ids=["deep", "2MB", "not-utf8", "not-json", "list", "null", "5000-digits", "NaN"],
)
def test_hostile_config_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "cfg.json"
    path.write_bytes(content)
    with pytest.raises(InvalidConfig) as err:
        load_config(path)
    assert message in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) < 300
    with pytest.raises(InvalidConfig) as err:
        RunConfig.from_json(content)
    assert message in str(err.value)


def test_a_huge_config_file_is_refused_by_its_size_without_reading_it(tmp_path, monkeypatch):
    path = tmp_path / "huge.json"
    with open(path, "wb") as fh:
        fh.truncate(5 * 1024**3)  # sparse: 5 GB long, nothing on disk
    reads = []

    def spying_open(*args, **kwargs):
        fh = open(*args, **kwargs)
        real_read = fh.read
        fh.read = lambda size=-1: reads.append(size) or real_read(size)
        return fh

    monkeypatch.setattr(config_module, "open", spying_open, raising=False)
    with pytest.raises(InvalidConfig, match="is 5,368,709,120 bytes of JSON; at most 1,048,576 are accepted"):
        load_config(path)
    assert reads == []


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidConfig, match="cannot read config"):
        load_config(tmp_path / "missing.json")
    with pytest.raises(InvalidConfig, match="is a folder$"):
        load_config(tmp_path)


def test_with_pooling_changes_only_pooling():
    cfg = ModelConfig()
    avg = cfg.with_pooling("avg")
    assert [b.pool for b in avg.conv] == ["avg", "avg", "none"]
    assert [b.out_channels for b in avg.conv] == [b.out_channels for b in cfg.conv]


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ConvBlock().stride = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "stored, precision",
    [({"amp": True}, "auto"), ({"amp": False}, "fp32"), ({"amp": False, "precision": "bf16"}, "bf16"), ({}, "auto")],
)
def test_configs_stored_with_the_old_amp_key_still_load_and_map_to_a_precision(stored, precision):
    run = RunConfig.from_dict({"train": {"epochs": 3, **stored}})
    assert run.train.precision == precision and run.train.epochs == 3
    again = json.loads(run.to_json())["train"]
    assert "amp" not in again and again["precision"] == precision
    assert RunConfig.from_json(run.to_json()) == run


def test_precision_is_one_of_auto_fp32_bf16_fp16():
    assert TrainConfig().precision == "auto"
    for name in ("auto", "fp32", "bf16", "fp16"):
        assert TrainConfig(precision=name).precision == name  # whether the device has it is checked at training
    with pytest.raises(InvalidConfig, match="train.precision: expected one of auto, fp32, bf16, fp16, got 'half'"):
        RunConfig.from_dict({"train": {"precision": "half"}})
