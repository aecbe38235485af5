"""The command line: summary, train and predict as a user runs them (in a subprocess)."""

import json
import subprocess
import sys

from PIL import Image, ImageDraw

from tests.conftest import ROOT


def cli(*args: str, env_runs=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnn_core", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_summary_json_has_one_line_per_config(tmp_path):
    cfg = tmp_path / "rgb.json"
    cfg.write_text(
        json.dumps(
            {
                "model": {
                    "in_channels": 3,
                    "input_size": 32,
                    "conv": [{"out_channels": 8, "kernel_size": 3, "padding": "same"}],
                }
            }
        )
    )
    out = cli("summary", "--json", "--config", str(cfg), "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 2
    layers = lines[0]["layers"]
    assert layers[0] == {
        **layers[0],
        "name": "conv1",
        "type": "conv",
        "output_shape": [8, 32, 32],
        "params": 8 * 27 + 8,
    }
    assert {layer["type"] for layer in layers} == {"conv", "pool", "flatten", "fc"}
    assert lines[0]["total_params"] == sum(layer["params"] for layer in layers)


def test_summary_of_invalid_config_exits_2_with_reason_and_no_traceback(tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"model": {"conv": [{"kernel_size": 5, "stride": 2, "padding": "same"}]}}))
    out = cli("summary", "--config", str(cfg))
    assert out.returncode == 2
    assert out.stderr.strip() == "error: conv1: 'same' padding needs stride 1 (PyTorch refuses it with stride 2)"


def test_train_json_reports_every_epoch_and_a_final_summary(tmp_path, private_runs_dir):
    out = cli(
        "train",
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--seed",
        "3",
        "--name",
        "cli-test",
        "--json",
        "--pooling",
        "avg",
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["epoch"] == 1
    final = lines[-1]
    assert final["status"] == "completed" and final["device"].split(" · ")[0] == "cpu"
    assert {"run_id", "test_accuracy", "val_accuracy", "seconds", "checkpoint"} <= set(final)
    assert final["checkpoint"].startswith(str(private_runs_dir)) and 0.1 < final["test_accuracy"] <= 1
    assert "step/s" in out.stderr or "%|" in out.stderr  # a progress bar on stderr


def test_train_with_unknown_dataset_exits_nonzero_with_a_clear_message():
    out = cli("train", "--dataset", "nope", "--epochs", "1")
    assert out.returncode == 2 and out.stderr.startswith("error: unknown dataset") and "Traceback" not in out.stderr


def _digit_png(path, digit_box=(30, 20, 70, 80)):
    img = Image.new("RGB", (100, 100), "white")
    ImageDraw.Draw(img).line([(50, 15), (50, 85)], fill="black", width=9)  # a "1"
    img.save(path)
    return path


def test_predict_reads_a_real_image_and_reports_bad_ones(tmp_path):
    good = _digit_png(tmp_path / "one.png")
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    out = cli("predict", str(good), str(bad), "--json")
    assert out.returncode != 0
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert first["path"] == str(good) and first["prediction"] == 1
    assert abs(sum(first["probabilities"]) - 1) < 1e-4 and len(first["probabilities"]) == 10
    assert second["path"] == str(bad) and "error" in second and "Traceback" not in out.stderr


def test_predict_with_a_missing_checkpoint_is_a_clear_error(tmp_path):
    out = cli("predict", str(_digit_png(tmp_path / "one.png")), "--checkpoint", "nope")
    assert out.returncode == 2 and "no checkpoint named 'nope'" in out.stderr


def test_train_on_a_missing_gpu_fails_with_one_line_and_records_the_run_as_failed(private_runs_dir):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = cli("train", "--epochs", "1", "--device", "cuda", "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: device 'cuda' was asked for" in out.stderr
    from cnn_core.runs import RunStore

    assert [r.status for r in RunStore().list()] == ["failed"]


def test_val_fraction_zero_trains_on_every_training_image(tmp_path):
    out = cli("train", "--epochs", "1", "--val-fraction", "0", "--json", "--runs-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "4,000 training images" in out.stderr  # the bundled 5,000 digits less the 1,000 held-out test images
    assert json.loads(out.stdout.splitlines()[-1])["val_accuracy"] is None
