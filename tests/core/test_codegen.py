"""The exported script: its Net has cnn_core's parameter names and shapes, a checkpoint loads into it, it trains."""

import argparse
import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from cnn_core.config import ConvBlock, ModelConfig, RunConfig, TrainConfig
from cnn_core.errors import InvalidConfig
from cnn_core.model import build_model
from cnn_core.model.checkpoint import load_checkpoint, resolve_checkpoint
from cnn_core.teaching.codegen import LOAD_LINES, add_commands, training_script
from tests.conftest import ROOT

SAMPLE = ROOT / "cnn_core" / "assets" / "mnist-5k"  # the bundled 5,000 digits (IDX, gzipped)
CONFIGS = {
    "lenet5": ModelConfig(),
    "avg, same padding, gelu, no hidden fc": ModelConfig(
        activation="gelu",
        conv=(ConvBlock(8, 3, padding="same", pool="avg"), ConvBlock(16, 3, stride=2, pool="none")),
        fc=(),
    ),
    "rgb 32×32": ModelConfig(in_channels=3, input_size=32, conv=(ConvBlock(6, 5), ConvBlock(16, 5))),
}


def script_namespace(run: RunConfig, dataset: str = "mnist") -> dict:
    namespace: dict = {"__name__": "exported"}
    exec(compile(training_script(run, dataset), "exported.py", "exec"), namespace)
    return namespace


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_exported_net_has_cnn_labs_parameter_names_and_shapes(name):
    model = CONFIGS[name]
    net = script_namespace(RunConfig(model=model))["Net"]()
    assert shapes(net) == shapes(build_model(model))
    assert [n for n, _ in net.named_children()] == [n for n, _ in build_model(model).named_children()]


def test_a_bundled_checkpoint_loads_with_the_three_lines_and_answers_the_same():
    namespace = script_namespace(RunConfig())
    source = str(resolve_checkpoint("lenet5-mnist-max"))
    exec(LOAD_LINES.replace("model.safetensors", source), namespace)
    assert LOAD_LINES.count("\n") == 2  # three lines
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(namespace["model"](x), load_checkpoint("lenet5-mnist-max").model(x), atol=1e-5)


def test_the_script_follows_the_chosen_optimizer_schedule_and_epochs():
    run = RunConfig(train=TrainConfig(optimizer="sgd", lr=0.05, momentum=0.8, schedule="cosine", augment=False))
    text = training_script(run, epochs=3)
    assert "optim.SGD(model.parameters(), lr=0.05, momentum=0.8, weight_decay=0.0005, nesterov=True)" in text
    assert "CosineAnnealingLR(optimizer, T_max=total_steps)" in text
    assert 'add_argument("--epochs", type=int, default=3)' in text and "use_augment = False" in text
    folder = training_script(RunConfig(), dataset="my-leaves")
    assert "datasets.ImageFolder" in folder and "Grayscale" in folder
    compile(folder, "folder.py", "exec")  # valid Python for class-folder datasets too


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers(dest="command", required=True))
    return p


def test_export_code_prints_the_script_for_a_config_file(tmp_path, capsys):
    config = tmp_path / "avg.json"
    config.write_text(RunConfig(model=ModelConfig().with_pooling("avg")).to_json())
    args = parser().parse_args(["export-code", "--config", str(config), "--epochs", "2"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "nn.AvgPool2d(2, stride=2)" in out and "default=2)" in out
    compile(out, "train_lenet.py", "exec")


def test_export_code_refuses_a_bad_config_with_a_typed_error(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text('{"model": {"conv": [{"stride": 0}]}}')
    args = parser().parse_args(["export-code", "--config", str(config)])
    with pytest.raises(InvalidConfig, match="conv1.stride"):
        args.func(args)
    with pytest.raises(InvalidConfig, match="--epochs"):
        args = parser().parse_args(["export-code", "--epochs", "0"])
        args.func(args)


def mnist_root(tmp_path):
    """torchvision's MNIST layout (root/MNIST/raw, plain IDX files) holding the bundled sample: no download.

    The sample has no test files (and is sorted by class): every fifth digit plays the test set."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = gzip.decompress((SAMPLE / "train-images-idx3-ubyte.gz").read_bytes())
    labels = gzip.decompress((SAMPLE / "train-labels-idx1-ubyte.gz").read_bytes())
    pixels = np.frombuffer(images, np.uint8, offset=16).reshape(-1, 28, 28)
    digits = np.frombuffer(labels, np.uint8, offset=8)
    test = np.arange(len(digits)) % 5 == 0
    for split, part in (("train", ~test), ("t10k", test)):
        x, y = pixels[part], digits[part]
        (raw / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, len(x), 28, 28) + x.tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, len(y)) + y.tobytes())
    return tmp_path / "data"


@pytest.mark.slow
def test_the_exported_script_trains_one_epoch_on_the_bundled_sample(tmp_path):
    script = tmp_path / "train_lenet.py"
    script.write_text(training_script(RunConfig(train=TrainConfig(batch_size=64)), epochs=1))
    saved = tmp_path / "model.pt"
    done = subprocess.run(
        [sys.executable, str(script), "--data-root", str(mnist_root(tmp_path)), "--save", str(saved)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    accuracy = float(done.stdout.split("test accuracy ")[1].split("%")[0]) / 100
    assert accuracy > 0.8  # one epoch of 5,000 digits: far above the 10 % of chance
    trained = torch.load(saved, weights_only=True)  # our own file, just written
    assert {k: tuple(v.shape) for k, v in trained.items()} == shapes(build_model())


def test_the_cli_prints_the_script_and_reports_a_bad_config_as_one_error_line(tmp_path, capsys):
    from cnn_core.cli import main

    assert main(["export-code", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith('"""Train the CNN Lab network for mnist')
        and 'add_argument("--epochs", type=int, default=2)' in out
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"optimizer": "rmsprop"}}')
    assert main(["export-code", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: train.optimizer: expected one of sgd, adam, adamw") and err.count("\n") == 1


def run_script(tmp_path, dataset: str, run: RunConfig, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "train_cnn.py"
    script.write_text(training_script(run, dataset, epochs=1))
    nowhere = tmp_path / "no-downloads-here"
    done = subprocess.run(
        [sys.executable, str(script), "--data-root", str(nowhere), "--save", str(tmp_path / "m.pt"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not nowhere.exists()  # nothing was downloaded
    return done


@pytest.mark.slow
def test_the_exported_script_trains_offline_on_the_idx_files_of_a_data_dir_testing_on_a_held_out_fifth(tmp_path):
    run = RunConfig(train=TrainConfig(batch_size=64))
    done = run_script(tmp_path, "mnist", run, "--data-dir", str(SAMPLE))  # the sample has no t10k files
    assert done.returncode == 0, done.stderr
    assert "4,000 training images, 1,000 test images" in done.stdout  # never tested on what it trained on
    assert float(done.stdout.split("test accuracy ")[1].split("%")[0]) > 80


@pytest.mark.slow
def test_the_exported_script_trains_offline_on_class_folders_in_cnn_labs_class_order(tmp_path):
    from tests.imagesets import make_image_folder

    folder = make_image_folder(tmp_path / "shapes", per_class=10, classes=("red-disc", "blue-disc"))
    model = ModelConfig(in_channels=3, input_size=28, num_classes=2)
    done = run_script(
        tmp_path, "folder", RunConfig(model=model, train=TrainConfig(batch_size=8)), "--data-dir", str(folder)
    )
    assert done.returncode == 0, done.stderr
    assert "16 training images, 4 test images" in done.stdout
    refused = run_script(tmp_path, "folder", RunConfig(model=model))
    assert refused.returncode == 2 and "--data-dir DIR is needed" in refused.stderr
