"""Every run on a Ray cluster: the node's side, the one writer here, the job manager's bridge and ``cnn-lab train
--address``, against a real ``ray start --head`` cluster (the ``cluster`` fixture, stopped by its PID).

The first tests need no cluster: what a node sends, recorded here, is the run a worker here records."""

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from streamlit.testing.v1 import AppTest

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.errors import CnnLabError, NotAllowed
from cnn_core.jobs import JobManager
from cnn_core.jobs.bridge import RETRY_SECONDS, address_of, set_address
from cnn_core.jobs.cluster import WHERE_FILE, _write_files, node_messages, record_message, request_for, slots_for
from cnn_core.model.checkpoint import load_checkpoint
from cnn_core.people import LOCAL, SHARED_WORKSPACE
from cnn_core.runs import RunStore, Status
from cnn_core.runs.runner import execute_run, recorder
from cnn_core.sweeps.driver import ClusterUnreachable
from tests.conftest import ROOT
from tests.polling import wait_until
from tests.ray_head import cluster_node_ids

FP32 = TrainConfig(epochs=2, batch_size=64, device="cpu", precision="fp32", augment=False)


def _dead_address() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


# -- no cluster needed ------------------------------------------------------------------------------------------


def test_what_a_node_sends_recorded_here_is_the_run_a_worker_here_records(small_data):
    store = RunStore()
    here = store.create(RunConfig(train=FP32), dataset="mnist", name="here")
    there = store.create(RunConfig(train=FP32), dataset="mnist", name="there", claim=True)
    execute_run(store, here, data=small_data)
    record = store.get(there)
    listener = recorder(store, there, None)
    record_message(store, record, ("start", {"node": "n1", "pid": 1, "device": "cpu · fp32"}), listener, "a:1")
    kinds = []
    for message in node_messages(record, small_data, None, lambda: False):
        kinds.append(message[0])
        record_message(store, record, message, listener, "a:1")
    assert kinds.count("epoch") == 2 and kinds[-1] == "end"
    a, b = store.get(here), store.get(there)
    assert (b.status, b.node, b.device, b.epochs_done) == (Status.COMPLETED, "n1", "cpu · fp32", 2)
    assert (a.test_accuracy, a.val_accuracy, a.node) == (b.test_accuracy, b.val_accuracy, None)
    weights_a, weights_b = load_file(a.checkpoint), load_file(b.checkpoint)
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)  # bit for bit, fp32 on one CPU
    assert len(store.metrics(here)) == len(store.metrics(there))
    assert [p.name for p in store.epoch_checkpoints(there)] == ["epoch_001.safetensors", "epoch_002.safetensors"]
    assert not store.train_state(there).exists()  # completed: nothing to go on from
    folder_a, folder_b = store.run_dir(here), store.run_dir(there)
    assert (folder_a / "predictions.json").read_bytes() == (folder_b / "predictions.json").read_bytes()
    assert json.loads((folder_b / WHERE_FILE).read_text())["node"] == "n1"


def test_a_stopped_node_run_keeps_its_state_to_resume_from(small_data):
    store = RunStore()
    run_id = store.create(RunConfig(train=replace(FP32, epochs=3)), dataset="mnist", claim=True)
    record, listener = store.get(run_id), recorder(store, run_id, None)
    record_message(store, record, ("start", {"node": "n1", "pid": 1, "device": "cpu"}), listener, "a:1")
    for message in node_messages(record, small_data, None, lambda: bool(store.epoch_checkpoints(run_id))):
        record_message(store, record, message, listener, "a:1")
    run = store.get(run_id)
    assert run.status is Status.STOPPED and run.resumable and store.train_state(run_id).is_file()


def test_a_node_that_fails_sends_one_line(small_data):
    store = RunStore()
    colour = replace(RunConfig().model, in_channels=3)  # grey digits into a colour network
    run_id = store.create(RunConfig(model=colour, train=FP32), dataset="mnist", claim=True)
    messages = list(node_messages(store.get(run_id), small_data, None, lambda: False))
    assert [m[0] for m in messages] == ["failed"]
    assert "does not match the model's input" in messages[0][1] and "\n" not in messages[0][1]


def test_a_file_from_a_node_never_lands_outside_its_run_folder(tmp_path):
    with pytest.raises(CnnLabError, match="outside its run's folder"):
        _write_files(tmp_path / "run", {"../escaped.txt": b"x"})
    assert not (tmp_path / "escaped.txt").exists()


def test_a_runs_request_and_the_room_left_follow_the_cluster(monkeypatch):
    run, on_cpu = RunConfig(), RunConfig(train=TrainConfig(device="cpu"))
    assert request_for(run, cluster_gpus=0) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert request_for(run, cluster_gpus=1) == {"num_cpus": 1.0, "num_gpus": 0.5}  # two runs share a GPU
    assert request_for(on_cpu, cluster_gpus=1)["num_gpus"] == 0.0
    monkeypatch.setenv("CNN_LAB_RUN_CPUS", "2")
    assert request_for(run, cluster_gpus=0)["num_cpus"] == 2.0
    assert slots_for({"CPU": 2.0}, {"num_cpus": 1.0, "num_gpus": 0.0}) == 2
    assert slots_for({"CPU": 8.0, "GPU": 1.0}, {"num_cpus": 1.0, "num_gpus": 0.5}) == 2  # the GPU is the limit
    assert slots_for({"CPU": 0.5}, {"num_cpus": 1.0, "num_gpus": 0.0}) == 0


def test_the_labs_cluster_is_an_administrators_choice_that_beats_ray_address(monkeypatch):
    store = RunStore()
    assert address_of(store) is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert address_of(store) == "10.0.0.1:6379"
    with pytest.raises(NotAllowed):
        set_address(store, "10.0.0.2:6379", by=SHARED_WORKSPACE)
    dead = _dead_address()
    with pytest.raises(ClusterUnreachable, match="cannot reach the Ray cluster"):
        set_address(store, dead, by=LOCAL)
    assert address_of(store) == "10.0.0.1:6379"  # a refused choice changes nothing
    set_address(store, None, by=LOCAL)
    assert address_of(store) == "10.0.0.1:6379"


@pytest.mark.slow
def test_runs_wait_in_the_queue_while_the_cluster_cannot_be_joined_and_the_admin_sees_why():
    store = RunStore()
    manager = JobManager(store, start_thread=False, address=_dead_address())
    try:
        run_id = manager.submit(RunConfig(train=replace(FP32, epochs=1)))
        wait_until(lambda: manager.pump() or manager.bridge.error, 60, "the bridge's error")
        assert "cannot reach the Ray cluster" in manager.bridge.error
        assert store.get(run_id).status is Status.QUEUED and manager.bridge.started == 1
        manager.pump()
        assert manager.bridge.started == 1  # not again at once: in RETRY_SECONDS
        assert RETRY_SECONDS >= 5
    finally:
        manager.close()


# -- on a real cluster ------------------------------------------------------------------------------------------

LONG = replace(FP32, epochs=40, batch_size=32)  # ~20 s on the bundled sample: time to look, stop or kill
MEDIUM = replace(LONG, epochs=6)  # killed after its second epoch, then resumed to its end


def _running_with_epochs(store: RunStore, run_id: str, epochs: int) -> bool:
    run = store.get(run_id)
    assert run.status.active, f"run {run_id} ended ({run.status}: {run.error}) before it could be looked at"
    return run.status is Status.RUNNING and run.epochs_done >= epochs


@pytest.mark.slow
def test_cnn_lab_train_address_trains_on_the_cluster_and_filters_and_explain_open_it(cluster, private_runs_dir):
    out = subprocess.run(
        [sys.executable, "-m", "cnn_core", "train", "--address", cluster, "--epochs", "2", "--name", "on-cluster"]
        + ["--device", "cpu", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    final = lines[-1]
    assert [line["epoch"] for line in lines[:-1]] == [1, 2]
    assert final["status"] == "completed" and final["node"] in cluster_node_ids(cluster)
    store = RunStore()
    run = store.get(final["run_id"])
    assert run.node == final["node"] and run.epochs_done == 2 and len(store.metrics(run.id)) >= 2
    assert load_checkpoint(run.checkpoint).verified
    assert len(store.epoch_checkpoints(run.id)) == 2
    label = f"run: on-cluster ({run.id})"
    filters = AppTest.from_file(str(ROOT / "views" / "filters.py"), default_timeout=90).run()
    filters.selectbox(key="filters.model").set_value(label).run()
    assert not filters.exception and filters.slider(key="filters.epoch").max == 2
    assert any("conv1: 6 × 28 × 28" in c for image in filters.image for c in image.captions)
    explain = AppTest.from_file(str(ROOT / "views" / "explain.py"), default_timeout=90).run()
    explain.selectbox(key="explain.model").set_value(label).run()
    assert not explain.exception and not explain.error
    assert explain.metric[0].label == "Prediction" and explain.metric[0].value.isdigit()


@pytest.mark.slow
def test_the_job_manager_sends_runs_to_the_admins_cluster_streams_them_and_stops_one(cluster):
    store = RunStore()
    set_address(store, cluster, by=LOCAL)
    manager = JobManager(store)  # no address given: it follows the lab's setting
    try:
        assert manager.address == cluster
        long_id = manager.submit(RunConfig(train=LONG), name="long")
        wait_until(lambda: _running_with_epochs(store, long_id, 1), 180, "the long run's first epoch")
        run = store.get(long_id)
        assert run.node in cluster_node_ids(cluster) and run.pid == manager.bridge.pid
        assert store.metrics(long_id) and load_checkpoint(store.epoch_checkpoints(long_id)[0]).verified  # live
        assert long_id in manager.running() and manager.capacity() == 2  # two 1-CPU runs on a 2-CPU cluster
        manager.stop(long_id)
        stopped = manager.wait(long_id, 60)
        assert stopped.status is Status.STOPPED and stopped.epochs_done < LONG.epochs
        assert stopped.resumable and load_checkpoint(stopped.checkpoint).verified
        quick = [manager.submit(RunConfig(train=replace(FP32, epochs=1))) for _ in range(3)]
        done = [manager.wait(run_id, 180) for run_id in quick]
        assert [r.status for r in done] == [Status.COMPLETED] * 3 and all(r.node for r in done)
        spans = sorted((r.started, r.ended) for r in done)
        assert not (spans[0][1] > spans[2][0] and spans[1][1] > spans[2][0])  # never three at once on 2 CPUs
        assert manager.bridge.started == 1
    finally:
        manager.close()


@pytest.mark.slow
def test_a_ray_worker_killed_mid_run_leaves_it_interrupted_and_it_resumes_on_the_cluster(cluster):
    store = RunStore()
    manager = JobManager(store, address=cluster)
    try:
        run_id = manager.submit(RunConfig(train=MEDIUM))
        wait_until(lambda: _running_with_epochs(store, run_id, 2), 180, "two epochs on the cluster")
        worker = json.loads((store.run_dir(run_id) / WHERE_FILE).read_text())["pid"]
        bridge = manager.bridge.pid
        os.kill(worker, signal.SIGKILL)  # the Ray worker process training it, by its PID
        lost = manager.wait(run_id, 120)
        assert lost.status is Status.INTERRUPTED and "Ray worker was lost" in lost.error and lost.resumable
        epoch = manager.resume(run_id)
        assert epoch >= 2
        done = manager.wait(run_id, 240)
        assert (done.status, done.epochs_done, done.resumed_from) == (Status.COMPLETED, MEDIUM.epochs, epoch)
        assert manager.bridge.pid == bridge and done.node is not None  # the same bridge took it again
    finally:
        manager.close()


@pytest.mark.slow
def test_a_killed_bridge_interrupts_its_run_a_new_one_takes_the_next_and_the_cli_resumes_it(cluster):
    store = RunStore()
    manager = JobManager(store, address=cluster)
    try:
        run_id = manager.submit(RunConfig(train=MEDIUM))
        wait_until(lambda: _running_with_epochs(store, run_id, 1), 180, "an epoch on the cluster")
        os.kill(manager.worker_pid(run_id), signal.SIGKILL)
        lost = manager.wait(run_id, 60)
        assert lost.status is Status.INTERRUPTED and lost.resumable
        quick = manager.submit(RunConfig(train=replace(FP32, epochs=1)))
        assert manager.wait(quick, 180).status is Status.COMPLETED
        assert manager.bridge.started == 2
    finally:
        manager.close()
    out = subprocess.run(
        [sys.executable, "-m", "cnn_core", "resume", run_id, "--address", cluster, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    final = json.loads(out.stdout.splitlines()[-1])
    assert final["status"] == "completed" and final["node"] and final["resumed_from"] == lost.epochs_done
    assert store.get(run_id).epochs_done == MEDIUM.epochs


@pytest.mark.slow
def test_an_administrator_sends_the_apps_runs_to_the_cluster_from_the_admin_page(cluster, private_runs_dir):
    from ui.resources import _manager_for

    at = AppTest.from_file(str(ROOT / "views" / "admin.py"), default_timeout=60).run()
    at.text_input(key="admin.cluster_address").input(cluster)
    next(b for b in at.button if b.label == "Send runs there").click().run()
    assert not at.exception and not at.error
    manager = _manager_for(str(private_runs_dir))  # the app's one manager, as the page made it
    try:
        assert address_of(RunStore()) == cluster
        wait_until(lambda: manager.pump() or (manager.bridge and manager.bridge.slots), 120, "the bridge's report")
        at.run()
        lines = [m.value for m in at.markdown if "The Ray cluster at" in m.value]
        assert lines and "2 CPUs" in lines[0] and "room for 2 more run(s)" in lines[0]
    finally:
        manager.close()
