"""The run store records runs across processes; checkpoints are atomic and validated."""

import os
import struct
import subprocess
import sys

import pytest
import torch

from cnn_core.config import ModelConfig, RunConfig, TrainConfig
from cnn_core.errors import BadCheckpoint, RunBusy, RunNotFound
from cnn_core.model import build_model
from cnn_core.model.checkpoint import bundled_checkpoints, load_checkpoint, save_checkpoint
from cnn_core.runs import RunStore
from cnn_core.runs.runner import execute_run
from tests.conftest import ROOT


def _tiny_run(**kw) -> RunConfig:
    return RunConfig(train=TrainConfig(**{"epochs": 2, "batch_size": 64, "device": "cpu", "log_every": 2, **kw}))


def test_a_run_is_recorded_with_metrics_epoch_checkpoints_and_final_model(small_data, private_runs_dir):
    store = RunStore()
    run_id = store.create(_tiny_run(), dataset="mnist")
    assert store.get(run_id).status == "queued" and store.root == private_runs_dir
    execute_run(store, run_id, data=small_data)
    row = store.get(run_id)
    assert row.status == "completed" and row.epochs_done == 2 and row.test_accuracy > 0.3
    assert len(store.metrics(run_id, "epoch")) == 2 and store.metrics(run_id, "step")
    assert [p.name for p in store.epoch_checkpoints(run_id)] == ["epoch_001.safetensors", "epoch_002.safetensors"]
    loaded = load_checkpoint(row.checkpoint)
    assert loaded.metadata["run_id"] == run_id and loaded.config == ModelConfig()
    assert RunStore().list()[0].id == run_id  # a second store object (another process) sees it


def test_diverged_run_keeps_no_nan_checkpoint(small_data):
    store = RunStore()
    run_id = store.create(_tiny_run(optimizer="sgd", lr=10.0, momentum=0.99, schedule="constant"), dataset="mnist")
    execute_run(store, run_id, data=small_data)
    row = store.get(run_id)
    assert row.status == "diverged" and "learning rate" in row.error
    assert not (store.run_dir(run_id) / "model.safetensors").exists()


def test_stop_requested_through_the_store_stops_the_run(small_data):
    store = RunStore()
    run_id = store.create(_tiny_run(epochs=50), dataset="mnist")
    store.request_stop(run_id)  # queued -> cancelled at once
    assert store.get(run_id).status == "stopped"
    run_id = store.create(_tiny_run(epochs=50), dataset="mnist")
    execute_run(store, run_id, data=small_data, on_event=lambda e: store.request_stop(run_id))
    assert store.get(run_id).status == "stopped"


def test_rename_delete_and_missing_runs():
    store = RunStore()
    run_id = store.create(_tiny_run(), dataset="mnist", name="first")
    store.rename(run_id, "  renamed ")
    assert store.get(run_id).name == "renamed"
    with pytest.raises(RunBusy, match="stop the run"):
        store.delete(run_id)
    store.request_stop(run_id)  # a queued run is cancelled at once, so it can go
    store.delete(run_id)
    assert not store.run_dir(run_id).exists()
    with pytest.raises(RunNotFound, match="no run"):
        store.get(run_id)


def test_dead_worker_leaves_run_interrupted_not_running():
    store = RunStore()
    run_id = store.create(_tiny_run(), dataset="mnist")
    assert store.claim(run_id) and not store.claim(run_id)  # claimed once only
    store.start(run_id, pid=999_999_999, device="cpu")
    assert store.mark_orphans(is_alive=lambda pid: False) == [run_id]
    assert store.get(run_id).status == "interrupted"


def _hammer(root: str, run_id: str, n: int) -> None:
    store = RunStore(root)
    for i in range(n):
        store.log_metric(run_id, {"kind": "step", "epoch": 1, "step": i, "loss": 1.0})


def test_one_writer_and_several_readers_never_see_database_is_locked(tmp_path):
    store = RunStore(tmp_path / "store")
    run_id = store.create(_tiny_run(), dataset="mnist")
    # separate interpreters (not multiprocessing, whose spawn re-runs whatever __main__ AppTest left behind)
    code = f"from tests.core.test_runs import _hammer; _hammer({str(store.root)!r}, {run_id!r}, 150)"
    writers = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT) for _ in range(2)]
    reads = 0
    while any(w.poll() is None for w in writers):
        store.metrics(run_id)
        store.list()
        reads += 1
    assert all(w.returncode == 0 for w in writers) and reads > 0
    assert len(store.metrics(run_id)) == 300


def test_checkpoint_round_trip_and_atomic_write(tmp_path):
    model = build_model(seed=0)
    path = save_checkpoint(tmp_path / "m.safetensors", model, ModelConfig(), {"test_accuracy": 0.5})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind
    loaded = load_checkpoint(path)
    assert loaded.metadata["test_accuracy"] == 0.5
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded.model(x), model.eval()(x))


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.safetensors", build_model(seed=0), ModelConfig())
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        save_checkpoint(path, build_model(seed=1), ModelConfig())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


def test_nan_weights_are_never_saved(tmp_path):
    model = build_model(seed=0)
    with torch.no_grad():
        model.conv1.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(BadCheckpoint, match="non-finite"):
        save_checkpoint(tmp_path / "nan.safetensors", model, ModelConfig())


def _good_bytes(tmp_path) -> bytes:
    return save_checkpoint(tmp_path / "good.safetensors", build_model(seed=0), ModelConfig()).read_bytes()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[: len(b) // 2], "not a valid safetensors|impossible"),
        (lambda b: b + b"trailing", "not a valid safetensors"),
        (lambda b: struct.pack("<Q", 2**40) + b[8:], "impossible"),
        (lambda b: b"\x80\x04\x95pickle", "header length|too short|impossible"),
        (lambda b: b"", "too short"),
    ],
)
def test_broken_checkpoint_bytes_give_a_clear_error(tmp_path, mutate, message):
    with pytest.raises(BadCheckpoint, match=message):
        load_checkpoint(mutate(_good_bytes(tmp_path)))


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    wide = ModelConfig(
        conv=(ModelConfig().conv[0].__class__(out_channels=16, kernel_size=5, padding=2), *ModelConfig().conv[1:])
    )
    data = save_checkpoint(tmp_path / "wide.safetensors", build_model(wide), wide).read_bytes()
    # swap in the default config: conv1 has 16 filters in the file but 6 in the config
    import json

    from safetensors.torch import load, save

    tensors = load(data)
    forged = save(tensors, metadata={"format": "cnn-lab/1", "config": json.dumps(ModelConfig().to_dict())})
    with pytest.raises(BadCheckpoint, match="size mismatch for conv1.weight"):
        load_checkpoint(forged)


def test_a_pickle_named_safetensors_or_a_pt_file_is_never_unpickled(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"x": 1}, evil)
    with pytest.raises(BadCheckpoint, match="only .safetensors"):
        load_checkpoint(evil)
    renamed = tmp_path / "evil.safetensors"
    renamed.write_bytes(evil.read_bytes())
    with pytest.raises(BadCheckpoint):
        load_checkpoint(renamed)


def test_bundled_checkpoints_ship_with_their_accuracy():
    rows = {r["name"]: r for r in bundled_checkpoints()}
    assert set(rows) == {"lenet5-mnist-max", "lenet5-mnist-avg"}
    for name, row in rows.items():
        assert row["available"] and row["test_accuracy"] > 0.97
        assert load_checkpoint(name).config.conv[0].pool == name.rsplit("-", 1)[1]


def test_gpu_out_of_memory_fails_the_run_cleanly_with_advice(small_data, monkeypatch):
    import cnn_core.runs.runner as runner

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(runner, "train", out_of_memory)
    store = RunStore()
    run_id = store.create(_tiny_run(batch_size=4096), dataset="mnist")
    assert execute_run(store, run_id, data=small_data) is None
    row = store.get(run_id)
    assert row.status == "failed" and "batch size 4096" in row.error and "\n" not in row.error


def test_a_store_made_before_total_steps_existed_is_upgraded(tmp_path):
    import sqlite3

    old = tmp_path / "old"
    old.mkdir()
    con = sqlite3.connect(old / "runs.db")
    con.execute(
        "CREATE TABLE metrics (run_id TEXT NOT NULL, kind TEXT NOT NULL, epoch INTEGER, step INTEGER, "
        "loss REAL, accuracy REAL, val_loss REAL, val_accuracy REAL, lr REAL, images_per_s REAL, elapsed REAL)"
    )
    con.commit()
    con.close()
    store = RunStore(old)
    run_id = store.create(_tiny_run(), dataset="mnist")
    store.log_metric(run_id, {"kind": "step", "epoch": 1, "step": 1, "loss": 1.0, "total_steps": 10})
    assert store.metrics(run_id)[0]["total_steps"] == 10


def test_last_metric_is_the_newest_row():
    store = RunStore()
    run_id = store.create(_tiny_run(), dataset="mnist")
    assert store.last_metric(run_id) is None
    for step in (1, 2, 3):
        store.log_metric(run_id, {"kind": "step", "epoch": 1, "step": step, "loss": 1.0 / step})
    assert store.last_metric(run_id)["step"] == 3 == store.metrics(run_id)[-1]["step"]
