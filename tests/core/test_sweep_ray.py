"""Sweeps on real Ray Tune: embedded by default, on a separate ``ray start --head`` cluster when asked.

Trials are tiny (a narrow LeNet, 1–2 epochs on 540 digits sliced from the bundled sample) so the cost is
Ray's own. One cluster is shared by the tests that ask for it and stopped by its PID at the end.
"""

import gzip
import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnn_core.config.sweep import SweepConfig
from cnn_core.data import load_dataset
from cnn_core.jobs import JobManager
from cnn_core.model.checkpoint import load_checkpoint
from cnn_core.runs import RunStore, Status, SweepStatus
from tests.conftest import ROOT
from tests.polling import wait_until
from tests.ray_head import cluster_node_ids

pytestmark = pytest.mark.slow

NARROW = {
    "model": {
        "conv": [
            {"out_channels": 4, "kernel_size": 5, "padding": 2},
            {"out_channels": 8, "kernel_size": 5},
            {"out_channels": 16, "kernel_size": 5, "pool": "none"},
        ],
        "fc": [32],
    },
    "train": {"epochs": 2, "batch_size": 16, "augment": False, "device": "cpu"},
}


def _write_idx(path: Path, array) -> None:
    head = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(head + array.astype("uint8").tobytes())


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> str:
    """600 training and 200 test digits of the bundled sample (every 7th / 5th: all ten classes), as IDX files."""
    folder = tmp_path_factory.mktemp("tiny-mnist")
    data = load_dataset("mnist", root="/nonexistent-cnn-lab-root", download=False)
    x, y = torch.cat([data.train_x, data.val_x])[::7][:600], torch.cat([data.train_y, data.val_y])[::7][:600]
    _write_idx(folder / "train-images-idx3-ubyte.gz", x[:, 0].numpy())
    _write_idx(folder / "train-labels-idx1-ubyte.gz", y.numpy())
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", data.test_x[::5][:200, 0].numpy())
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", data.test_y[::5][:200].numpy())
    return str(folder)


def _spec(tmp_path: Path, tiny_dir: str, **fields) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"dataset": "mnist", "data_dir": tiny_dir, "base": NARROW, **fields}))
    return str(path)


def _sweep(*args: str, runs: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "cnn_core", "sweep", *args, "--runs-dir", str(runs), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_local_sweep_records_every_trial_and_prunes_the_clearly_worse(tmp_path, tiny_dir):
    runs = tmp_path / "runs"
    spec = {
        "space": {"train.lr": {"grid": [0.005, 0.004, 1.0]}},  # lr 1.0 learns nothing: stuck at chance
        "seeds": [0, 1],
        "early_stop": {"grace_epochs": 1, "reduction_factor": 2},
        "max_concurrent": 2,
    }
    out = _sweep(_spec(tmp_path, tiny_dir, **spec), runs=runs)
    summary = json.loads(out.stdout.splitlines()[-1])
    store = RunStore(runs)
    sweep = store.sweeps.get(summary["sweep_id"])
    assert sweep.status is SweepStatus.COMPLETED and not sweep.cluster["joined"]  # Ray embedded in the driver
    assert len(summary["trials"]) == 6 and summary["invalid"] == []
    assert {(t["params"]["train.lr"], t["seed"]) for t in summary["trials"]} == {
        (lr, s) for lr in (0.005, 0.004, 1.0) for s in (0, 1)
    }
    for trial in summary["trials"]:
        run = store.get(trial["run_id"])
        assert run.group_id == sweep.id and run.epochs_done >= 1
        assert len(store.metrics(run.id, "epoch")) == run.epochs_done  # one row per epoch it trained
        assert load_checkpoint(store.epoch_checkpoints(run.id)[-1]).config == run.config.model
        if run.status is Status.COMPLETED:
            final = load_checkpoint(run.checkpoint)
            assert final.metadata["run_id"] == run.id and final.classes == [str(d) for d in range(10)]
            assert final.preprocess == "digit" and run.test_accuracy == trial["test_accuracy"] is not None
            assert (store.run_dir(run.id) / "predictions.json").is_file()
    bad = [t for t in summary["trials"] if t["params"]["train.lr"] == 1.0]
    assert {t["status"] for t in bad} == {"pruned"}  # stopped by successive halving after its grace epoch
    assert all(store.get(t["run_id"]).epochs_done == 1 for t in bad)  # and keeps the epoch it trained


@pytest.fixture(scope="module")
def cluster_sweep(tmp_path_factory, tiny_dir, cluster) -> tuple[RunStore, dict]:
    """One sweep on the separate cluster, two trials: ten classes trains; two classes for the ten digits is a
    valid config whose data does not fit it, so that trial raises."""
    tmp = tmp_path_factory.mktemp("cluster-sweep")
    base = {**NARROW, "train": {**NARROW["train"], "epochs": 1}}
    spec = _spec(tmp, tiny_dir, space={"model.num_classes": {"grid": [10, 2]}}, base=base)
    out = _sweep(spec, "--address", cluster, runs=tmp / "runs")
    return RunStore(tmp / "runs"), json.loads(out.stdout.splitlines()[-1])


def test_a_trial_that_raises_is_failed_and_the_sweep_goes_on(cluster_sweep):
    store, summary = cluster_sweep
    trials = {t["params"]["model.num_classes"]: t for t in summary["trials"]}
    assert summary["status"] == "completed"
    assert trials[10]["status"] == "completed" and trials[10]["test_accuracy"] is not None
    assert trials[2]["status"] == "failed" and "outside the model's 2 classes" in trials[2]["error"]


def test_a_sweep_runs_on_a_cluster_that_is_not_the_drivers_own(cluster_sweep, cluster):
    store, summary = cluster_sweep
    sweep = store.sweeps.get(summary["sweep_id"])
    nodes = cluster_node_ids(cluster)
    assert sweep.cluster["joined"] and sweep.cluster["gcs_address"].endswith(":" + cluster.split(":")[1])
    assert set(sweep.cluster["nodes"]) == nodes
    trials = store.sweeps.trials(sweep.id)
    assert {store.get(t.run_id).status for t in trials} == {Status.COMPLETED, Status.FAILED}  # back in the store
    trained = [t for t in trials if store.get(t.run_id).status is Status.COMPLETED]
    assert trained[0].node in nodes  # on the cluster's node (the failed one raised before its first report)
    assert store.get(trained[0].run_id).node == trained[0].node  # its run says so too, as a run's would


def _wait(predicate, timeout: float = 180.0):
    wait_until(predicate, timeout)


def test_stopping_an_optuna_sweep_stops_both_seeds_of_its_draw(tmp_path, tiny_dir, cluster):
    manager = JobManager(RunStore(tmp_path / "runs"), max_concurrent=1)
    sweep = SweepConfig.from_dict(
        {
            "space": {"train.lr": {"loguniform": [4e-3, 1e-2]}},
            "search": "optuna",
            "num_samples": 1,
            "seeds": [0, 1],
            # 9 steps an epoch: far from the 300 steps after which a run stuck at chance is called diverged
            "base": {**NARROW, "train": {**NARROW["train"], "epochs": 100, "batch_size": 64}},
            "data_dir": tiny_dir,
        }
    )
    try:
        sweep_id = manager.submit_sweep(sweep, address=cluster)
        store = manager.store
        _wait(lambda: len(runs := store.list(group=sweep_id)) == 2 and max(r.epochs_done for r in runs) >= 1)
        manager.stop_sweep(sweep_id)
        assert manager.wait_sweep(sweep_id, timeout=120).status is SweepStatus.STOPPED
    finally:
        manager.close()
    trials = store.sweeps.trials(sweep_id)
    assert {t.seed for t in trials} == {0, 1} and len({t.params["train.lr"] for t in trials}) == 1  # one draw
    for trial in trials:
        run = store.get(trial.run_id)
        assert run.status is Status.STOPPED and run.epochs_done < 100
        # the epochs it trained are kept; a stop may land between an epoch's report and its checkpoint, so the
        # run (like an interrupted worker's) points at its last saved epoch, and one more epoch may be on record
        assert len(store.metrics(run.id, "epoch")) in (run.epochs_done, run.epochs_done + 1)


def test_killing_the_driver_interrupts_the_sweep_and_resume_finishes_it(tmp_path, tiny_dir, cluster):
    runs = tmp_path / "runs"
    manager = JobManager(RunStore(runs), max_concurrent=1)
    sweep = SweepConfig.from_dict(
        {
            "space": {"train.lr": {"grid": [0.005, 0.004, 0.003, 0.002]}},
            "base": {**NARROW, "train": {**NARROW["train"], "epochs": 4}},  # seconds left to kill it in
            "data_dir": tiny_dir,
            "max_concurrent": 1,
        }
    )
    try:
        sweep_id = manager.submit_sweep(sweep, address=cluster)
        store = manager.store
        _wait(  # one trial done and the next one training
            lambda: store.list(status=(Status.COMPLETED,), group=sweep_id) and store.list(status=(Status.RUNNING,))
        )
        kept = {r.id for r in store.list(status=(Status.COMPLETED,))}
        assert kept and manager.driver_pid(sweep_id) is not None
        os.kill(manager.driver_pid(sweep_id), signal.SIGKILL)
        assert manager.wait_sweep(sweep_id, timeout=60).status is SweepStatus.INTERRUPTED
        assert not store.list(status=(Status.RUNNING,))  # the trial it was training is interrupted, not running
    finally:
        manager.close()
    _sweep("--resume", sweep_id, runs=runs)
    store = RunStore(runs)
    assert store.sweeps.get(sweep_id).status is SweepStatus.COMPLETED
    trials = store.sweeps.trials(sweep_id)
    assert len(trials) == 4 and all(store.get(t.run_id).status is Status.COMPLETED for t in trials)
    assert kept <= {t.run_id for t in trials}  # finished trials were kept, not trained again


def test_a_trial_cut_off_by_a_killed_driver_goes_on_from_its_last_epoch_when_the_sweep_resumes(tmp_path, tiny_dir):
    """Ray embedded in the driver; Tune restores the trial from its last checkpoint, which holds the training
    state, so its run (the same id) goes on after that epoch: no second epoch 1, no epoch recorded twice."""
    runs, epochs = tmp_path / "runs", 100  # ~10 s of training: time to kill the driver in
    manager = JobManager(RunStore(runs), max_concurrent=1)
    store = manager.store
    sweep = SweepConfig.from_dict(
        {
            "space": {"train.lr": {"grid": [0.005]}},
            # cosine: one-cycle's warm-up over 100 epochs is so slow that two epochs at chance count as stuck
            "base": {**NARROW, "train": {**NARROW["train"], "epochs": epochs, "schedule": "cosine"}},
            "data_dir": tiny_dir,
        }
    )
    try:
        sweep_id = manager.submit_sweep(sweep)
        run = wait_until(lambda: next(iter(store.list(group=sweep_id)), None), 180, "the trial's run")
        wait_until(lambda: store.get(run.id).epochs_done >= 2, 180, "two epochs recorded", interval=0.05)
        # Tune writes its experiment state (the trial's latest checkpoint) every 2 trial checkpoints or 2 s
        saved = wait_until(lambda: _saved_epoch(runs / "sweeps" / sweep_id), 60, "Tune's state", interval=0.05)
        assert store.get(run.id).status is Status.RUNNING, "the trial ended before the driver could be killed"
        os.kill(manager.driver_pid(sweep_id), signal.SIGKILL)
        assert manager.wait_sweep(sweep_id, timeout=60).status is SweepStatus.INTERRUPTED
        # the sweep first, then its trials: each in a transaction of its own
        wait_until(lambda: store.get(run.id).status is Status.INTERRUPTED, 30, "the trial interrupted")
        before = store.metrics(run.id, "epoch")
        assert len(before) < epochs

        manager.resume_sweep(sweep_id)  # the existing path: queued again, the driver restores Tune's state
        done = manager.wait_sweep(sweep_id, timeout=300)
    finally:
        manager.close()
    assert done.status is SweepStatus.COMPLETED, done.error
    assert [t.run_id for t in store.sweeps.trials(sweep_id)] == [run.id]  # the same run, not a new one
    resumed = store.get(run.id)
    assert resumed.status is Status.COMPLETED and resumed.epochs_done == epochs
    assert 1 <= saved <= resumed.resumed_from <= len(before)  # the last epoch Tune had saved, not epoch 0
    rows = store.metrics(run.id, "epoch")
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))  # no second epoch 1, none twice
    assert rows[: resumed.resumed_from] == before[: resumed.resumed_from]  # the epochs it kept are as recorded
    first_new, last_kept = rows[resumed.resumed_from], rows[resumed.resumed_from - 1]
    assert first_new["step"] == last_kept["step"] + rows[0]["step"]  # its step count went on from the last epoch
    assert first_new["elapsed"] > last_kept["elapsed"]  # so did its clock
    assert len(store.epoch_checkpoints(run.id)) == epochs


def _saved_epoch(sweep_folder: Path) -> int:
    """The epoch of the trial's latest checkpoint in the experiment state Tune last wrote (what ``Tuner.restore``
    restores it from): every report of the trainable carries a checkpoint, so it is that of the last result."""
    states = sorted((sweep_folder / "tune").glob("experiment_state-*.json"))
    try:
        trials = json.loads(states[-1].read_text())["trial_data"] if states else []
    except (OSError, ValueError):  # being written
        return 0
    result = json.loads(trials[0][1]).get("last_result") or {} if trials else {}
    return int(result.get("epoch", 0)) if result.get("checkpoint_dir_name") else 0
