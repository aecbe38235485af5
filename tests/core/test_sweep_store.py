"""The sweeps table: one owner of a sweep's life (queued → running → completed/stopped/interrupted → resumed),
its trials tied to ordinary runs, and dead drivers noticed — without Ray."""

from cnn_core.config import RunConfig
from cnn_core.config.sweep import Invalid, SweepConfig
from cnn_core.runs import RunStore, Status, SweepStatus

SPEC = SweepConfig.from_dict({"space": {"train.lr": {"grid": [0.01, 0.001]}}, "seeds": [0, 1], "name": "lr"})


def test_a_sweep_is_queued_claimed_once_and_finished():
    store = RunStore()
    sweep_id = store.sweeps.create(SPEC, address="10.0.0.1:6379")
    assert store.sweeps.get(sweep_id).status is SweepStatus.QUEUED
    assert store.sweeps.claim(sweep_id) and not store.sweeps.claim(sweep_id)
    store.sweeps.start(sweep_id, pid=12345, cluster={"nodes": ["n1"], "joined": True})
    store.sweeps.add_invalid(sweep_id, [Invalid({"train.lr": 9.0}, "too big")])
    store.sweeps.finish(sweep_id, SweepStatus.COMPLETED)
    sweep = store.sweeps.get(sweep_id)
    assert sweep.status is SweepStatus.COMPLETED and sweep.config == SPEC and sweep.address == "10.0.0.1:6379"
    assert sweep.cluster["nodes"] == ["n1"] and sweep.invalid == (Invalid({"train.lr": 9.0}, "too big"),)
    assert (store.sweeps.folder(sweep_id) / "spec.json").is_file()


def test_a_dead_driver_leaves_the_sweep_interrupted_and_its_running_trials_too():
    store = RunStore()
    sweep_id = store.sweeps.create(SPEC, claim=True)
    store.sweeps.start(sweep_id, pid=999_999, cluster={})
    done = store.create(RunConfig(), "mnist", group_id=sweep_id, claim=True)
    store.finish(done, Status.COMPLETED, test_accuracy=0.9)
    busy = store.create(RunConfig(), "mnist", group_id=sweep_id, claim=True)
    store.sweeps.add_trial(sweep_id, "t1", done, {"train.lr": 0.01}, 0)
    store.sweeps.add_trial(sweep_id, "t2", busy, {"train.lr": 0.01}, 1)
    assert store.sweeps.mark_orphans(lambda pid: False) == [sweep_id]
    assert store.sweeps.get(sweep_id).status is SweepStatus.INTERRUPTED
    assert store.get(done).status is Status.COMPLETED  # finished trials are kept as they were
    assert store.get(busy).status is Status.INTERRUPTED
    assert [t.run_id for t in store.sweeps.trials(sweep_id)] == [done, busy]


def test_a_killed_drivers_watcher_leaves_a_sweep_resumed_since_to_its_new_driver():
    """The reaper of a driver killed with SIGKILL records the end only of the sweep that driver was running: a
    resume in the seconds it takes to notice belongs to the next driver."""
    import time

    from cnn_core.sweeps.reaper import record_end

    store = RunStore()
    sweep_id = store.sweeps.create(SPEC, claim=True)
    watched_since = time.time()  # the first driver's watcher starts after its claim
    store.sweeps.interrupt(sweep_id, "the sweep's driver was killed by signal 9")  # as the job manager records it
    store.sweeps.resume(sweep_id)
    record_end(str(store.root), sweep_id, 12345, None, watched_since)
    assert store.sweeps.get(sweep_id).status is SweepStatus.QUEUED  # queued again, not interrupted by the watcher
    assert store.sweeps.claim(sweep_id)  # the next driver's
    record_end(str(store.root), sweep_id, 12345, None, watched_since)
    assert store.sweeps.get(sweep_id).status is SweepStatus.RUNNING
    record_end(str(store.root), sweep_id, 23456, None, time.time())  # that driver's own watcher
    assert "pid 23456" in store.sweeps.get(sweep_id).error


def test_stop_cancels_a_queued_sweep_and_resume_queues_it_again():
    store = RunStore()
    sweep_id = store.sweeps.create(SPEC)
    store.sweeps.request_stop(sweep_id)
    assert store.sweeps.get(sweep_id).status is SweepStatus.STOPPED
    store.sweeps.resume(sweep_id)
    sweep = store.sweeps.get(sweep_id)
    assert sweep.status is SweepStatus.QUEUED and not sweep.stop_requested and sweep.ended is None


def test_an_old_store_gains_the_sweep_tables(tmp_path):
    import sqlite3

    RunStore(tmp_path)
    with sqlite3.connect(tmp_path / "runs.db") as con:
        con.execute("DROP TABLE sweep_trials")
        con.execute("DROP TABLE sweeps")
    store = RunStore(tmp_path)
    assert store.sweeps.list() == []
