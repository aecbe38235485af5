"""Hostile run configs through the real CLI: every one is refused with exit 2 and one ``error:`` line, and a
refused run leaves nothing behind (no run folder, no changed file anywhere in the sandbox)."""

import json

import pytest

from tests.reliability.conftest import STORE_FILES, changes, error_line, run_folders, under

BIG = 2**64

# (case id, file content, what the one error line must say)
CONFIGS = [
    # wrong types
    ("epochs-as-text", '{"train": {"epochs": "10"}}', "train.epochs: expected an integer from 1 to 1,000"),
    ("fc-as-text", '{"model": {"fc": "84"}}', "model.fc: expected a list of 0 to 16 widths"),
    ("train-as-null", '{"train": null}', "train: expected a JSON object, got None"),
    ("padding-word", '{"model": {"conv": [{"padding": "wide"}]}}', "conv1.padding: expected an integer from 0 to 64"),
    ("epochs-as-float", '{"train": {"epochs": 1.0}}', "train.epochs: expected an integer from 1 to 1,000, got 1.0"),
    ("augment-as-number", '{"train": {"augment": 1}}', "train.augment: expected true, false or 'auto', got 1"),
    # NaN and infinities (Python's json reads the bare words NaN, Infinity, -Infinity and 1e400)
    ("lr-NaN", '{"train": {"lr": NaN}}', "train.lr: expected a number in (0, 10], got nan"),
    ("lr-Infinity", '{"train": {"lr": Infinity}}', "train.lr: expected a number in (0, 10], got inf"),
    ("decay-minus-Infinity", '{"train": {"weight_decay": -Infinity}}', "train.weight_decay: expected a number"),
    # booleans where numbers belong (bool is an int in Python)
    ("epochs-true", '{"train": {"epochs": true}}', "train.epochs: expected an integer from 1 to 1,000, got True"),
    ("lr-false", '{"train": {"lr": false}}', "train.lr: expected a number in (0, 10], got False"),
    # 2**64 and longer integers
    (
        "seed-2**64",
        f'{{"train": {{"seed": {BIG}}}}}',
        f"train.seed: expected an integer from 0 to 9,223,372,036,854,775,806, got {BIG}",
    ),
    (
        "channels-2**64",
        f'{{"model": {{"conv": [{{"out_channels": {BIG}}}]}}}}',
        "conv1.out_channels: expected an integer",
    ),
    ("seed-5000-digits", '{"train": {"seed": ' + "9" * 5000 + "}}", "holds a number too long to read"),
    # huge fully connected widths, too many layers
    (
        "fc-1e23",
        '{"model": {"fc": [99999999999999999999999]}}',
        "fc1.width: expected an integer from 1 to 65,536, got 99999999999999999999999",
    ),
    ("fc-1e8", '{"model": {"fc": [100000000]}}', "fc1.width: expected an integer from 1 to 65,536, got 100000000"),
    ("fc-17-layers", json.dumps({"model": {"fc": [84] * 17}}), "model.fc: expected a list of 0 to 16 widths"),
    # unknown keys
    ("unknown-section", '{"bogus": 1}', "config: unknown section(s) bogus; expected 'model' and 'train'"),
    ("unknown-train-key", '{"train": {"learning_rate": 0.1}}', "train: unknown key(s) learning_rate; expected"),
    # nesting, size, encoding, shape of the document
    ("lists-100000-deep", "[" * 100_000 + "]" * 100_000, "nests 100000 levels deep; at most 32 are accepted"),
    (
        "two-megabytes",
        json.dumps({"train": {}, "pad": "a" * (2 << 20)}),
        "bytes of JSON; at most 1,048,576 are accepted",
    ),
    ("invalid-utf8", b'{"train": {"optimizer": "\xff\xfe"}}', "is not UTF-8 text"),
    ("empty-file", b"", "is not valid JSON: Expecting value at line 1"),
    ("a-list", "[1, 2]", "config: expected a JSON object with 'model' and/or 'train', got [1, 2]"),
    # ranges
    (
        "epochs-10**6",
        '{"train": {"epochs": 1000000}}',
        "train.epochs: expected an integer from 1 to 1,000, got 1000000",
    ),
]

# The train command reads the config the same way; these cases also go through it (it imports torch: slower).
TRAIN_CASES = {"lr-NaN", "fc-1e23", "lists-100000-deep", "invalid-utf8", "epochs-10**6"}


def write(path, content) -> str:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def refused_leaves_nothing(sandbox, before) -> None:
    after = sandbox.snapshot(under(*STORE_FILES))
    assert after == before, changes(before, after)
    assert run_folders(sandbox.runs) == []


@pytest.mark.parametrize("content, message", [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_summary_refuses_a_bad_config_in_one_line(sandbox, content, message):
    path = write(sandbox.root / "config.json", content)
    before = sandbox.snapshot()
    out = sandbox.cli("summary", "--config", path)
    assert out.returncode == 2
    assert message in error_line(out)
    assert out.stdout == ""
    refused_leaves_nothing(sandbox, before)


@pytest.mark.parametrize(
    "content, message",
    [c[1:] for c in CONFIGS if c[0] in TRAIN_CASES],
    ids=[c[0] for c in CONFIGS if c[0] in TRAIN_CASES],
)
def test_train_refuses_a_bad_config_before_recording_a_run(sandbox, content, message):
    path = write(sandbox.root / "config.json", content)
    before = sandbox.snapshot()
    out = sandbox.cli("train", "--config", path)
    assert out.returncode == 2
    assert message in error_line(out)
    refused_leaves_nothing(sandbox, before)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seed", "-1"], "train.seed: expected an integer from 0 to 9,223,372,036,854,775,806, got -1"),
        (["--seed", str(BIG)], f"train.seed: expected an integer from 0 to 9,223,372,036,854,775,806, got {BIG}"),
        (["--epochs", "1000000"], "train.epochs: expected an integer from 1 to 1,000, got 1000000"),
        (["--lr=-inf"], "train.lr: expected a number in (0, 10], got -inf"),
    ],
    ids=["seed-minus-1", "seed-2**64", "epochs-10**6", "lr-minus-inf"],
)
def test_train_refuses_a_bad_flag_value_in_one_line(sandbox, flags, message):
    before = sandbox.snapshot()
    out = sandbox.cli("train", *flags)
    assert out.returncode == 2
    assert message in error_line(out)
    refused_leaves_nothing(sandbox, before)


@pytest.mark.parametrize("value", ["abc", "2**64"])
def test_a_seed_that_is_not_an_integer_is_an_argparse_usage_error(sandbox, value):
    """argparse's own type errors keep its usage lines (exit 2); the last line names the flag and the value."""
    before = sandbox.snapshot()
    out = sandbox.cli("train", "--seed", value)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith("usage: cnn-lab train ")
    assert lines[-1] == f"cnn-lab train: error: argument --seed: invalid int value: '{value}'"
    refused_leaves_nothing(sandbox, before)


def test_one_bad_config_among_several_stops_summary_with_one_line(sandbox):
    good = write(sandbox.root / "good.json", '{"train": {}}')
    bad = write(sandbox.root / "bad.json", '{"train": {"lr": NaN}}')
    out = sandbox.cli("summary", "--config", good, "--config", bad)
    assert out.returncode == 2
    assert error_line(out) == "error: train.lr: expected a number in (0, 10], got nan"


def test_a_missing_or_folder_config_is_one_line(sandbox):
    out = sandbox.cli("summary", "--config", str(sandbox.root / "nowhere.json"))
    assert out.returncode == 2
    assert "No such file or directory" in error_line(out)
    out = sandbox.cli("summary", "--config", str(sandbox.root))
    assert out.returncode == 2
    assert error_line(out).endswith("is a folder")


def test_dev_zero_as_config_is_refused_without_reading_it(sandbox):
    out = sandbox.cli("summary", "--config", "/dev/zero", timeout=30)
    assert out.returncode == 2
    assert error_line(out).endswith("is not a regular file")  # refused by its type, before any read


@pytest.mark.slow
def test_a_fifo_as_config_does_not_hang(sandbox):
    import os

    fifo = sandbox.root / "config.json"
    os.mkfifo(fifo)
    out = sandbox.cli("summary", "--config", str(fifo), timeout=10)
    assert out.returncode == 2
    assert "not a regular file" in error_line(out) or "cannot read config" in error_line(out)


def test_the_refusal_of_a_big_config_does_not_misstate_its_size(sandbox):
    content = json.dumps({"train": {}, "pad": "a" * (2 << 20)})
    path = write(sandbox.root / "config.json", content)
    line = error_line(sandbox.cli("summary", "--config", path))
    assert "1,048,577 bytes" not in line, line


@pytest.mark.parametrize("key", ["a\nb", "\x1b[31mred"], ids=["newline-key", "escape-key"])
def test_an_unknown_key_with_control_characters_stays_one_escaped_line(sandbox, key):
    path = write(sandbox.root / "config.json", json.dumps({"train": {key: 1}}))
    out = sandbox.cli("summary", "--config", path)
    assert out.returncode == 2
    line = error_line(out)
    assert "\x1b" not in line and "unknown key(s)" in line
