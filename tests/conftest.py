"""Shared fixtures: a private run store per test and a small slice of the bundled MNIST sample."""

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from cnn_core.data import Dataset, load_dataset

ROOT = Path(__file__).resolve().parent.parent

OFFICIAL_MNIST = ROOT.parent / "shared" / "datasets" / "mnist-5k-official-test"


@pytest.fixture(autouse=True)
def private_runs_dir(tmp_path, monkeypatch):
    """Every test gets its own run store, so nothing touches the project's runs/ folder."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("CNN_LAB_RUNS", str(runs))
    monkeypatch.setenv("CNN_LAB_DATA", str(tmp_path / "no-data-here"))
    monkeypatch.setenv("CNN_LAB_DATASETS", str(tmp_path / "datasets"))
    for name in ("CNN_LAB_ADMINS", "CNN_LAB_USER", "CNN_LAB_FOLDER_ROOTS", "CNN_LAB_TRUSTED_NETWORK", "CNN_LAB_QUOTAS"):
        monkeypatch.delenv(name, raising=False)
    for name in ("RAY_ADDRESS", "CNN_LAB_RUN_CPUS", "CNN_LAB_RUN_GPUS"):  # nor a cluster: runs train here
        monkeypatch.delenv(name, raising=False)  # a shared lab's settings of this shell never leak into a test
    for name in ("RUNS", "SWEEPS", "RUN_DISK_MB", "DATASET_DISK_MB"):
        monkeypatch.delenv(f"CNN_LAB_QUOTA_{name}", raising=False)
    return runs


@pytest.fixture(autouse=True)
def close_app_job_managers():
    """A page test (AppTest) makes the app's job manager for its own run store; closing it afterwards keeps the
    manager threads and warm workers of earlier tests from running on beside later ones."""
    yield
    resources = sys.modules.get("ui.resources")
    if resources is not None:
        resources._manager_for.clear()  # its on_release closes each manager it held


@pytest.fixture(scope="session")
def bundled() -> Dataset:
    return load_dataset("mnist", root="/nonexistent-cnn-lab-root", download=False)


@pytest.fixture(scope="session")
def small_data(bundled) -> Dataset:
    """600 training digits: enough to learn something in a second, small enough for 2 cores."""
    return replace(
        bundled,
        train_x=bundled.train_x[:600],
        train_y=bundled.train_y[:600],
        val_x=bundled.val_x[:200],
        val_y=bundled.val_y[:200],
        test_x=bundled.test_x[:300],
        test_y=bundled.test_y[:300],
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray cluster that is not any driver's own (one per test module that asks for it); its address."""
    from tests.ray_head import ray_head

    with ray_head(tmp_path_factory.mktemp("ray-head")) as address:
        yield address
