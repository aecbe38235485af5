"""Shared fixtures: a private run store per test and a small slice of the bundled MNIST sample."""

import os
import shutil
import subprocess
import tempfile
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
    """A Ray cluster that is not any driver's own: ``ray start --head --block`` in its own process (one per test
    module that asks for it), stopped by its PID; its address."""
    from tests.e2e.serve import free_port
    from tests.polling import wait_until

    port = free_port()
    log_path = tmp_path_factory.mktemp("ray-head") / "head.log"
    # Its own temp dir (short: Ray's socket paths must stay under 108 bytes), so the address file it leaves
    # behind is not /tmp/ray's, which other Ray users on this machine read.
    temp_dir = tempfile.mkdtemp(prefix="cnnlab-ray-", dir="/tmp")
    # No token authentication on this throwaway local cluster (Ray 2.60 turns it on by default for `ray start`).
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen(
        ["ray", "start", "--head", f"--port={port}", "--num-cpus=2", "--num-gpus=0", "--block"]
        + ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        stdout=open(log_path, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    try:
        wait_until(lambda: "Ray runtime started" in log_path.read_text() or proc.poll() is not None, 60, "the Ray head")
        assert proc.poll() is None, log_path.read_text()[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()  # by its PID: `ray start --block` ends the processes it started (never `ray stop`)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def cluster_node_ids(address: str) -> set[str]:
    """The cluster's nodes, as Ray itself reports them."""
    import ray

    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        return {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()
