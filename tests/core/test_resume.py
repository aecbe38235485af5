"""Resuming: a run stopped, interrupted or killed after an epoch goes on from there, under its own id, and ends
with the same weights and test accuracy as the same run never stopped (CPU, fp32 and bf16: bit for bit)."""

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from cnn_core.config import ModelConfig, RunConfig, TrainConfig
from cnn_core.errors import BadCheckpoint, CannotResume
from cnn_core.jobs import JobManager
from cnn_core.model.checkpoint import PARTIAL_WRITE, load_checkpoint
from cnn_core.runs import RunStore, Status
from cnn_core.runs.runner import execute_run, resume_run
from cnn_core.training import TrainState, cpu_has_bf16, load_state, save_state, train
from tests.conftest import ROOT
from tests.polling import wait_until

NARROW = ModelConfig.from_dict(
    {
        "conv": [
            {"out_channels": 4, "kernel_size": 5, "padding": 2},
            {"out_channels": 8, "kernel_size": 5},
            {"out_channels": 16, "kernel_size": 5, "pool": "none"},
        ],
        "fc": [32],
    }
)


def _run(epochs: int = 4, **train_kw) -> RunConfig:
    base = dict(epochs=epochs, batch_size=64, device="cpu", precision="fp32", log_every=5)
    return RunConfig(model=NARROW, train=TrainConfig(**{**base, **train_kw}))


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Bit for bit: the same names, and every tensor equal (``torch.equal``, tolerance 0)."""
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def _interrupted_after(run: RunConfig, data, epoch: int, tmp_path):
    """The run trained without a break, and its state after ``epoch`` read back from a file, as a run
    stopped there would have left it."""
    path = tmp_path / "train_state.safetensors"

    def keep(model, event, state: TrainState) -> None:
        if event.epoch == epoch:
            save_state(path, state)

    whole = train(run, data, on_epoch_end=keep)
    return whole, load_state(path)


# -- the loop -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_resumed_after_epoch_2_of_4_ends_with_the_same_weights_and_test_accuracy(bundled, tmp_path):
    run = _run()  # the bundled 5k sample: augmentation on ("auto"), so both generators matter
    whole, state = _interrupted_after(run, bundled, 2, tmp_path)
    events = []
    resumed = train(run, bundled, on_event=events.append, resume=state)
    assert resumed.status == "completed" and resumed.epochs_done == 4
    assert _same_weights(whole.model.state_dict(), resumed.model.state_dict())
    assert resumed.test_accuracy == whole.test_accuracy
    assert torch.equal(resumed.test_predictions, whole.test_predictions)
    assert [e.loss for e in resumed.history] == [e.loss for e in whole.history]  # epochs 1-2 from the state
    assert [e.epoch for e in events if e.kind == "epoch"] == [3, 4]  # only the epochs it trained are reported
    assert min(e.step for e in events if e.kind == "step") > 2 * whole.history[0].step  # its steps go on counting


@pytest.mark.parametrize("optimizer, schedule", [("sgd", "cosine"), ("adam", "constant"), ("adamw", "onecycle")])
def test_every_optimizer_and_schedule_resumes_exactly(small_data, tmp_path, optimizer, schedule):
    run = _run(epochs=3, optimizer=optimizer, schedule=schedule, augment=True)
    whole, state = _interrupted_after(run, small_data, 1, tmp_path)
    resumed = train(run, small_data, resume=state)
    assert _same_weights(whole.model.state_dict(), resumed.model.state_dict())
    assert resumed.test_accuracy == whole.test_accuracy


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU does not compute bf16 natively")
def test_bf16_resumes_exactly_too_on_the_same_cpu(small_data, tmp_path):
    """Autocast recasts the fp32 weights at every step and keeps nothing between steps: the state is all fp32."""
    run = _run(epochs=3, precision="bf16")
    whole, state = _interrupted_after(run, small_data, 1, tmp_path)
    resumed = train(run, small_data, resume=state)
    assert _same_weights(whole.model.state_dict(), resumed.model.state_dict())
    assert resumed.test_accuracy == whole.test_accuracy


def test_a_state_resumed_at_its_last_epoch_only_evaluates(small_data, tmp_path):
    run = _run(epochs=2)
    whole, state = _interrupted_after(run, small_data, 2, tmp_path)
    heard = []
    resumed = train(run, small_data, on_epoch_end=lambda *args: heard.append(args), resume=state)
    assert resumed.epochs_done == 2 and heard == [] and resumed.test_accuracy == whole.test_accuracy


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda run: replace(run, model=ModelConfig()), "does not fit this run"),  # another network
        (lambda run: replace(run, train=replace(run.train, optimizer="sgd")), "does not fit this run"),
        (lambda run: replace(run, train=replace(run.train, batch_size=32)), "the training data changed"),
        (lambda run: replace(run, train=replace(run.train, epochs=1)), "past this run's 1 epochs"),
    ],
    ids=["network", "optimizer", "batches", "epochs"],
)
def test_a_state_that_does_not_fit_the_run_is_refused_in_one_line(small_data, tmp_path, change, says):
    _, state = _interrupted_after(_run(epochs=2), small_data, 2, tmp_path)
    with pytest.raises(BadCheckpoint, match=says) as err:
        train(change(_run(epochs=2)), small_data, resume=state)
    assert "\n" not in str(err.value)


# -- the state file ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_epoch(small_data, tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("state")
    _interrupted_after(_run(epochs=1), small_data, 1, folder)
    return (folder / "train_state.safetensors").read_bytes()


@pytest.fixture
def state_file(one_epoch, tmp_path):
    path = tmp_path / "train_state.safetensors"
    path.write_bytes(one_epoch)
    return path, load_state(path)


def test_a_state_file_round_trips_exactly(state_file):
    path, _ = state_file
    state = load_state(path)
    again = load_state(save_state(path.with_name("copy.safetensors"), state))
    assert again.optimizer["param_groups"] == state.optimizer["param_groups"]  # tuples (betas) and int keys kept
    assert isinstance(again.optimizer["param_groups"][0]["betas"], tuple)
    assert list(again.optimizer["state"]) == list(range(len(again.weights)))
    assert again.schedule == state.schedule and again.history == state.history
    assert _same_weights(again.weights, state.weights) and _same_weights(again.generators, state.generators)


def test_a_state_file_is_written_whole_or_not_at_all(state_file, monkeypatch):
    """A disk that fills up (or a crash) mid-write leaves the previous state whole and no temp file behind."""
    path, state = state_file
    before = path.read_bytes()

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        save_state(path, replace(state, epoch=99))
    assert path.read_bytes() == before and load_state(path).epoch == 1
    assert [p.name for p in path.parent.iterdir() if PARTIAL_WRITE.fullmatch(p.name)] == []


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flipped(path):
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # inside the last tensor: the header still parses
    path.write_bytes(bytes(data))


def _pickle(path):
    import pickle

    path.write_bytes(pickle.dumps({"epoch": 1}))


def _checkpoint(path):
    from cnn_core.model import build_model
    from cnn_core.model.checkpoint import save_checkpoint

    save_checkpoint(path, build_model(), ModelConfig())  # a safetensors file, but weights only


@pytest.mark.parametrize(
    "damage, says",
    [
        (_truncated, "truncated"),
        (_flipped, "do not match the SHA-256"),
        (_pickle, "truncated or not a safetensors file"),
        (_checkpoint, "not a CNN Lab training state"),
        (lambda path: path.unlink(), "does not exist"),
        (lambda path: path.write_bytes(b""), "truncated"),
    ],
    ids=["truncated", "flipped-byte", "pickle", "weights-only-checkpoint", "missing", "empty"],
)
def test_a_damaged_state_file_is_refused_in_one_line(state_file, damage, says):
    path, _ = state_file
    damage(path)
    with pytest.raises(BadCheckpoint, match=says) as err:
        load_state(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


# -- the store and the runner ------------------------------------------------------------------------------------


def _stop_during(epoch: int):
    """``on_event`` and ``should_stop`` for a run that stops in the middle of ``epoch``."""
    seen = []
    return seen.append, lambda: any(e.kind == "step" and e.epoch == epoch for e in seen)


def _stopped_run(store: RunStore, run: RunConfig, data, during: int) -> str:
    run_id = store.create(run, "mnist", claim=True)
    listen, stop = _stop_during(during)
    execute_run(store, run_id, data=data, on_event=listen, should_stop=stop)
    assert store.get(run_id).status is Status.STOPPED and store.get(run_id).epochs_done == during - 1
    return run_id


def test_a_stopped_run_resumes_under_its_own_id_without_recording_an_epoch_twice(small_data):
    store, run = RunStore(), _run()
    whole = store.create(run, "mnist", claim=True)
    execute_run(store, whole, data=small_data)
    run_id = _stopped_run(store, run, small_data, during=3)
    assert store.get(run_id).resumable and store.train_state(run_id).is_file()

    assert resume_run(store, run_id) == 2
    queued = store.get(run_id)
    assert queued.status is Status.QUEUED and queued.resumed_from == 2 and queued.test_accuracy is None
    assert {m["epoch"] for m in store.metrics(run_id)} == {1, 2}  # the stopped epoch 3's steps are dropped
    execute_run(store, run_id, data=small_data)

    done, reference = store.get(run_id), store.get(whole)
    assert done.status is Status.COMPLETED and done.epochs_done == 4 and done.resumed_from == 2
    assert [m["epoch"] for m in store.metrics(run_id, "epoch")] == [1, 2, 3, 4]
    steps = [m["step"] for m in store.metrics(run_id, "step")]
    assert steps == sorted(set(steps)) == [m["step"] for m in store.metrics(whole, "step")]
    lines = (store.run_dir(run_id) / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert done.test_accuracy == reference.test_accuracy
    final, expected = load_checkpoint(done.checkpoint).model, load_checkpoint(reference.checkpoint).model
    assert _same_weights(final.state_dict(), expected.state_dict())
    assert len(store.epoch_checkpoints(run_id)) == 4 and not store.train_state(run_id).exists()  # dead weight


def test_resuming_forgets_an_epoch_saved_after_the_state_it_goes_on_from(small_data):
    """A worker killed between an epoch's checkpoint and its state: that epoch is trained and recorded again."""
    store = RunStore()
    run_id = _stopped_run(store, _run(), small_data, during=3)
    epochs = store.run_dir(run_id) / "epochs"
    for suffix in (".safetensors", ".json"):  # as if epoch 3's checkpoint had been saved, but not its state
        (epochs / f"epoch_003{suffix}").write_bytes((epochs / f"epoch_002{suffix}").read_bytes())
    store.log_metric(run_id, {"kind": "epoch", "epoch": 3, "step": 30, "loss": 1.0})
    store.resume(run_id, 2)
    assert [p.name for p in store.epoch_checkpoints(run_id)] == ["epoch_001.safetensors", "epoch_002.safetensors"]
    assert not (epochs / "epoch_003.json").exists()
    assert [m["epoch"] for m in store.metrics(run_id, "epoch")] == [1, 2]
    assert store.get(run_id).checkpoint == str(epochs / "epoch_002.safetensors")
    record = json.loads((store.run_dir(run_id) / "run.json").read_text())
    assert record["status"] == "queued" and record["resumed_from"] == 2  # the folder's own record agrees


def test_only_a_stopped_interrupted_or_failed_run_with_a_saved_epoch_resumes(small_data):
    store = RunStore()
    done = store.create(_run(epochs=1), "mnist", claim=True)
    execute_run(store, done, data=small_data)
    with pytest.raises(CannotResume, match="is completed; only a stopped, interrupted or failed run"):
        resume_run(store, done)
    queued = store.create(_run(), "mnist")
    with pytest.raises(CannotResume, match="is queued"):
        resume_run(store, queued)
    early = store.create(_run(), "mnist", claim=True)
    store.fail(early, "the data vanished")
    assert not store.get(early).resumable
    with pytest.raises(CannotResume, match="no saved training state"):
        resume_run(store, early)
    trial = store.create(_run(), "mnist", group_id="sweep-20260101-000000-abcdef", claim=True)
    store.record_epoch(trial, 1, store.run_dir(trial) / "epochs" / "epoch_001.safetensors")
    store.interrupt(trial, "the driver died")
    assert not store.get(trial).resumable
    with pytest.raises(CannotResume, match="resume the sweep"):
        resume_run(store, trial)
    for status in (Status.INTERRUPTED, Status.FAILED, Status.STOPPED):
        assert replace(store.get(done), status=status).resumable
    assert not replace(store.get(done), status=Status.DIVERGED).resumable


def test_a_damaged_state_leaves_the_run_as_it_was(small_data):
    store = RunStore()
    run_id = _stopped_run(store, _run(), small_data, during=2)
    _truncated(store.train_state(run_id))
    with pytest.raises(BadCheckpoint, match="truncated"):
        resume_run(store, run_id)
    assert store.get(run_id).status is Status.STOPPED and len(store.metrics(run_id, "epoch")) == 1


# -- the CLI -----------------------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnn_core", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_cli_resume_goes_on_from_the_last_epoch_and_ends_with_a_json_summary(private_runs_dir):
    store = RunStore()
    run_id = _stopped_run(store, _run(epochs=2, batch_size=128), None, during=2)  # the data a worker loads
    out = _cli("resume", run_id, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["epoch"] for line in lines[:-1]] == [2]  # only the epoch it trained now
    final = lines[-1]
    assert final["run_id"] == run_id and final["status"] == "completed" and final["resumed_from"] == 1
    assert final["node"] is None  # trained here, not on a Ray cluster
    assert 0.1 < final["test_accuracy"] <= 1 and final["checkpoint"].startswith(str(private_runs_dir))
    assert f"run {run_id}: " in out.stderr and "goes on after epoch 1 of 2" in out.stderr
    assert [m["epoch"] for m in RunStore().metrics(run_id, "epoch")] == [1, 2]


@pytest.mark.slow
def test_cli_resume_refuses_a_run_with_nothing_to_go_on_from_in_one_line(small_data):
    store = RunStore()
    done = store.create(_run(epochs=1), "mnist", claim=True)
    execute_run(store, done, data=small_data)
    stopped = _stopped_run(store, _run(), small_data, during=2)
    _flipped(store.train_state(stopped))
    for run_id, says in (
        (done, f"error: run {done} is completed; only a stopped, interrupted or failed run can be resumed"),
        (stopped, "is damaged: its tensors do not match the SHA-256"),
        ("20260101-000000-abcdef", "error: no run '20260101-000000-abcdef'"),
        ("../etc", "error: '../etc' is not a run id"),
    ):
        out = _cli("resume", run_id)
        assert out.returncode == 2 and out.stdout == "", out.stderr
        assert len(out.stderr.splitlines()) == 1 and says in out.stderr and "Traceback" not in out.stderr


# -- a real worker, killed -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_killed_after_epoch_2_is_interrupted_and_resumes_to_the_same_result():
    run = _run(batch_size=32)
    manager = JobManager(RunStore(), max_concurrent=1)
    store = manager.store
    try:
        whole = manager.submit(run, name="uninterrupted")
        assert manager.wait(whole, timeout=300).status is Status.COMPLETED
        run_id = manager.submit(run, name="killed")
        row = wait_until(lambda: (r := store.get(run_id)).epochs_done >= 2 and r, 300, "epoch 2", interval=0.02)
        os.kill(row.pid, signal.SIGKILL)
        killed = wait_until(lambda: (r := store.get(run_id)).status is not Status.RUNNING and r, 60, "the reaping")
        assert killed.status is Status.INTERRUPTED and "signal 9" in killed.error and killed.resumable
        saved = load_state(store.train_state(run_id))  # whole: written atomically, whenever the kill came
        assert 2 <= saved.epoch < 4, "the worker finished before it could be killed: make the run slower"

        assert resume_run(store, run_id) == saved.epoch
        done = manager.wait(run_id, timeout=300)
    finally:
        manager.close(stop_runs=True)
    reference = store.get(whole)
    assert done.status is Status.COMPLETED and done.epochs_done == 4 and done.pid != row.pid
    assert [m["epoch"] for m in store.metrics(run_id, "epoch")] == [1, 2, 3, 4]
    assert done.test_accuracy == reference.test_accuracy
    final, expected = load_checkpoint(done.checkpoint).model, load_checkpoint(reference.checkpoint).model
    assert _same_weights(final.state_dict(), expected.state_dict())
