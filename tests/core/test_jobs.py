"""The job manager trains in worker processes, queues, stops, and survives killed workers."""

import os
import signal

import pytest

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.jobs import JobManager
from cnn_core.model.checkpoint import load_checkpoint
from cnn_core.runs import RunStore
from tests.polling import wait_until


def _run(epochs: int = 1, **kw) -> RunConfig:
    return RunConfig(train=TrainConfig(epochs=epochs, device="cpu", batch_size=128, **kw))


def _wait_for(predicate, timeout: float = 90.0):
    return wait_until(predicate, timeout, interval=0.1)


@pytest.fixture
def manager():
    m = JobManager(RunStore(), max_concurrent=1)
    yield m
    m.close(stop_runs=True)


def test_a_submitted_run_trains_in_a_worker_process(manager):
    run_id = manager.submit(_run(), name="job")
    row = manager.wait(run_id, timeout=120)
    assert row.status == "completed", row.error
    assert row.pid != os.getpid() and row.test_accuracy > 0.5
    assert load_checkpoint(row.checkpoint).metadata["run_id"] == run_id


def test_queue_respects_the_concurrency_limit_and_cancel(manager):
    first = manager.submit(_run(epochs=30))
    second = manager.submit(_run())
    third = manager.submit(_run())
    _wait_for(lambda: manager.store.get(first).status == "running")
    assert manager.store.get(second).status == "queued"  # one slot on a CPU
    manager.stop(third)
    assert manager.store.get(third).status == "stopped"
    manager.stop(first)
    assert manager.wait(first, timeout=60).status == "stopped"
    assert manager.wait(second, timeout=120).status == "completed"
    assert manager.store.get(third).started is None  # a cancelled run never started


@pytest.mark.slow
def test_killing_a_worker_leaves_the_run_interrupted_with_a_loadable_checkpoint(manager):
    run_id = manager.submit(_run(epochs=60))
    _wait_for(lambda: manager.store.get(run_id).epochs_done >= 1)
    os.kill(manager.store.get(run_id).pid, signal.SIGKILL)
    row = _wait_for(lambda: (r := manager.store.get(run_id)).status != "running" and r)
    assert row.status == "interrupted" and "signal 9" in row.error
    assert load_checkpoint(row.checkpoint).model is not None
    again = manager.submit(_run())  # the manager still works
    assert manager.wait(again, timeout=120).status == "completed"


def test_a_restarted_app_marks_runs_of_dead_workers_interrupted():
    store = RunStore()
    run_id = store.create(_run(), dataset="mnist")
    store.claim(run_id)
    store.start(run_id, pid=2**22 + 12345, device="cpu")  # a pid that is not alive
    JobManager(store, start_thread=False)
    assert store.get(run_id).status == "interrupted"


@pytest.mark.slow
def test_warm_workers_train_run_after_run_in_one_process_and_a_dead_one_is_replaced(manager):
    assert manager.pool is not None and len(manager.pool.workers) == 1  # started with the app, before any launch
    first = manager.wait(manager.submit(_run()), timeout=120)
    second = manager.wait(manager.submit(_run()), timeout=120)
    assert first.status == second.status == "completed"
    assert first.pid == second.pid == manager.pool.workers[0].pid  # the same warm process, torch imported once
    long = manager.submit(_run(epochs=60))
    _wait_for(lambda: manager.store.get(long).epochs_done >= 1)
    os.kill(first.pid, signal.SIGKILL)
    row = _wait_for(lambda: (r := manager.store.get(long)).status != "running" and r)
    assert row.status == "interrupted" and "signal 9" in row.error
    _wait_for(lambda: manager.pool.started == 2 and manager.pool.workers)  # refilled (right after the reaping)
    assert manager.pool.workers[0].pid != first.pid
    after = manager.wait(manager.submit(_run()), timeout=120)
    assert after.status == "completed" and after.pid == manager.pool.workers[0].pid


@pytest.mark.slow
def test_without_warm_workers_each_run_gets_a_fresh_process(monkeypatch):
    monkeypatch.setenv("CNN_LAB_WARM_WORKERS", "0")
    manager = JobManager(RunStore(), max_concurrent=1)
    try:
        assert manager.pool is None
        runs = [manager.wait(manager.submit(_run()), timeout=120) for _ in range(2)]
        assert [r.status for r in runs] == ["completed", "completed"] and runs[0].pid != runs[1].pid
    finally:
        manager.close(stop_runs=True)
