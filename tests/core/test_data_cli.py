"""``data add|list|remove``, then ``train --dataset NAME`` and ``predict`` on what it made, as a user runs them."""

import json

import pytest

from cnn_core.model.checkpoint import load_checkpoint
from cnn_core.settings import datasets_dir
from tests.core.test_cli import cli
from tests.imagesets import make_image_folder, tree, zip_folder

TWO = ("red-disc", "green-square")


@pytest.mark.slow
def test_a_folder_added_from_the_cli_trains_and_its_checkpoint_predicts_class_names(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", per_class=12, classes=TWO)
    (folder / "red-disc" / "broken.png").write_bytes(b"garbage")
    added = cli("data", "add", "shapes", str(folder), "--size", "32", "--json")
    assert added.returncode == 0, added.stderr
    summary = json.loads(added.stdout.strip().splitlines()[-1])
    assert summary["classes"] == sorted(TWO) and summary["images"] == 24 and summary["channels"] == 3
    assert summary["skipped"] == [
        ["red-disc/broken.png", "not an image CNN Lab can read (PNG, JPEG, WEBP, BMP, GIF, TIFF)"]
    ]
    listed = cli("data", "list", "--json")
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["shapes"]

    trained = cli("train", "--dataset", "shapes", "--epochs", "1", "--batch-size", "8", "--json")
    assert trained.returncode == 0, trained.stderr
    final = json.loads(trained.stdout.strip().splitlines()[-1])
    checkpoint = load_checkpoint(final["checkpoint"])
    assert checkpoint.classes == sorted(TWO) and checkpoint.preprocess == "photo:crop"
    assert (checkpoint.config.in_channels, checkpoint.config.input_size, checkpoint.config.conv[0].padding) == (
        3,
        32,
        0,
    )

    predicted = cli("predict", "--checkpoint", final["checkpoint"], str(folder / "green-square" / "0000.png"), "--json")
    answer = json.loads(predicted.stdout)
    assert predicted.returncode == 0 and answer["class"] in TWO and len(answer["probabilities"]) == 2

    assert cli("data", "remove", "shapes").returncode == 0
    assert cli("data", "list").stdout == "" and tree(datasets_dir()) == set()


def test_a_zip_path_is_added_and_a_bad_one_is_one_line_and_exit_2(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", per_class=6, classes=TWO)
    (tmp_path / "shapes.zip").write_bytes(zip_folder(folder))
    added = cli("data", "add", "zipped", str(tmp_path / "shapes.zip"), "--channels", "1", "--size", "28")
    assert added.returncode == 0 and "zipped: 12 images, 28×28 grey, 2 classes" in added.stdout
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    refused = cli("data", "add", "other", str(tmp_path / "bad.zip"))
    assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1].startswith("error: not a readable zip")
    assert "Traceback" not in refused.stderr and not (datasets_dir() / "other").exists()
    unknown = cli("train", "--dataset", "nope", "--epochs", "1")
    assert unknown.returncode == 2 and "unknown dataset 'nope'" in unknown.stderr and "zipped" in unknown.stderr
