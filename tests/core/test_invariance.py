"""Invariance curves: exact moves, curves that start at the run's own test accuracy, and the Explain perturbations."""

import json

import numpy as np
import pytest
import torch

from cnn_core.compare import invariance
from cnn_core.config import RunConfig, TrainConfig
from cnn_core.model.checkpoint import load_checkpoint
from cnn_core.runs import RunStore
from cnn_core.runs.runner import execute_run
from cnn_core.settings import checkpoints_dir


def impulse(row: int, col: int, size: int = 28) -> torch.Tensor:
    x = torch.zeros(1, 1, size, size)
    x[0, 0, row, col] = 1.0
    return x


def test_whole_pixel_shifts_move_the_image_exactly_and_no_move_changes_nothing():
    moved = invariance.transform(impulse(10, 10), shift=(3, -2))
    assert torch.nonzero(moved[0, 0] > 0.999).tolist() == [[8, 13]] and float(moved.sum()) == pytest.approx(1)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(invariance.transform(x), x, atol=1e-6)


def test_rotation_turns_clockwise_about_the_centre_and_scale_enlarges():
    turned = invariance.transform(impulse(4, 14), angle=90)  # top centre -> right centre
    row, col = divmod(int(turned[0, 0].argmax()), 28)
    assert (row, col) == (14, 23) or (row, col) == (13, 23)
    bigger = invariance.transform(impulse(4, 14, 28).expand(1, 1, 28, 28).clone(), scale=1.3)
    assert divmod(int(bigger[0, 0].argmax()), 28)[0] < 4  # away from the centre


def test_the_curves_average_four_shift_directions_and_both_rotations():
    assert len(invariance.variants("shift", 2)) == 4 and len(invariance.variants("rotation", 10)) == 2
    assert invariance.passes_per_model() == 1 + 4 * 4 + 1 + 6 * 2 + 7
    with pytest.raises(ValueError, match="unknown kind"):
        invariance.variants("shear", 1)


@pytest.mark.slow
def test_the_shift_curve_starts_at_the_runs_own_test_accuracy(small_data):
    store = RunStore()
    run_id = store.create(RunConfig(train=TrainConfig(epochs=1, batch_size=64, device="cpu")), dataset="mnist")
    execute_run(store, run_id, data=small_data)
    run = store.get(run_id)
    model = load_checkpoint(run.checkpoint).model
    curves = invariance.curves({"run": [model]}, small_data.test_x, small_data.test_y)
    unchanged = curves[curves["amount"].isin([0.0, 1.0]) & ~((curves["kind"] == "shift") & (curves["amount"] == 1))]
    assert list(unchanged["mean"]) == pytest.approx([run.test_accuracy] * 3)
    assert (curves["std"] == 0).all() and (curves["seeds"] == 1).all()


def test_bundled_models_curves_start_at_their_recorded_test_accuracy(bundled):
    for name in ("lenet5-mnist-max", "lenet5-mnist-avg"):
        recorded = json.loads((checkpoints_dir() / f"{name}.json").read_text())["test_accuracy"]
        model = load_checkpoint(name).model
        assert invariance.accuracy_under(model, bundled.test_x, bundled.test_y, {"shift": (0, 0)}) == recorded


@pytest.mark.slow
def test_seeds_give_a_mean_and_a_standard_deviation(small_data):
    models = [load_checkpoint("lenet5-mnist-max").model, load_checkpoint("lenet5-mnist-avg").model]
    both = invariance.curves({"two": models}, small_data.test_x[:100], small_data.test_y[:100])
    alone = [invariance.curves({"one": [m]}, small_data.test_x[:100], small_data.test_y[:100]) for m in models]
    assert np.allclose(both["mean"], (alone[0]["mean"] + alone[1]["mean"]) / 2)
    assert np.allclose(both["std"], np.abs(alone[0]["mean"] - alone[1]["mean"]) / np.sqrt(2))
    assert "Shift 4 px: two " in invariance.summary(both)


def test_perturb_thickens_thins_and_adds_the_same_noise_for_the_same_seed(bundled):
    digit = bundled.test_x[0, 0].float().numpy() / 255
    assert invariance.perturb(digit, thickness=1).sum() > digit.sum() > invariance.perturb(digit, thickness=-1).sum()
    noisy = invariance.perturb(digit, noise=0.3, seed=4)
    assert np.array_equal(noisy, invariance.perturb(digit, noise=0.3, seed=4)) and noisy.min() >= 0 and noisy.max() <= 1
    assert np.allclose(invariance.perturb(digit), digit, atol=1e-5)
    colour = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    assert invariance.perturb(colour, shift=(1, 0), angle=10, scale=0.9).shape == (3, 32, 32)
