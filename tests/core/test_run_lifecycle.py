"""A run's life is owned by the store: typed rows, one transition a method, folders that can rebuild a lost store."""

import sqlite3

import pytest

from cnn_core.config import ModelConfig, RunConfig, TrainConfig
from cnn_core.errors import BadRunStore, InvalidRunName, RunNotFound
from cnn_core.runs import Run, RunStore, Status, escape_controls
from cnn_core.runs.runner import execute_run


def _run(**kw) -> RunConfig:
    return RunConfig(train=TrainConfig(**{"epochs": 2, "batch_size": 64, "device": "cpu", "log_every": 2, **kw}))


def test_rows_come_back_as_frozen_runs_with_a_parsed_config_and_a_status():
    store = RunStore()
    run_id = store.create(RunConfig(model=ModelConfig().with_pooling("avg"), train=_run(seed=7).train), "mnist")
    run = store.get(run_id)
    assert isinstance(run, Run) and run.status is Status.QUEUED and run.status.active and not run.finished
    assert isinstance(run.config, RunConfig) and (run.pooling, run.seed, run.epochs) == ("avg", 7, 2)
    with pytest.raises(AttributeError):
        run.name = "changed"  # frozen
    assert store.list() == [run]


def test_each_stored_config_is_parsed_once_and_shared_by_every_read(private_runs_dir):
    """Every open Train page lists the store each second: the same JSON must not be parsed and validated again."""
    store = RunStore()
    run_id = store.create(_run(seed=3), "mnist")
    first, again = store.list()[0], RunStore().get(run_id)  # another store object, as another session has
    assert first.config is again.config and first.config.train.seed == 3
    with sqlite3.connect(private_runs_dir / "runs.db") as con:  # damaged later: refused every time, never cached
        con.execute('UPDATE runs SET config = \'{"train": {"epochs": -1}}\' WHERE id = ?', (run_id,))
    for _ in range(2):
        with pytest.raises(BadRunStore, match="damaged in the store"):
            store.get(run_id)


def test_transitions_write_only_from_the_states_they_leave():
    store = RunStore()
    run_id = store.create(_run(), "mnist")
    assert store.claim(run_id) and not store.claim(run_id)  # a second manager cannot take it too
    store.start(run_id, pid=4242, device="cpu")
    store.finish(run_id, Status.COMPLETED, epochs_done=2, test_accuracy=0.9)
    store.fail(run_id, "too late")  # a finished run is not failed afterwards
    store.interrupt(run_id, "too late")
    run = store.get(run_id)
    assert (run.status, run.pid, run.device, run.test_accuracy, run.error) == (Status.COMPLETED, 4242, "cpu", 0.9, None)
    assert run.ended is not None and run.started is not None


def test_a_queued_run_stopped_is_cancelled_and_never_claimed():
    store = RunStore()
    run_id = store.create(_run(), "mnist")
    store.request_stop(run_id)
    assert store.get(run_id).status is Status.STOPPED and not store.claim(run_id)


def test_result_fields_and_columns_are_checked_never_turned_into_sql():
    store = RunStore()
    run_id = store.create(_run(), "mnist", claim=True)
    with pytest.raises(TypeError, match="not a result field"):
        store.finish(run_id, Status.COMPLETED, **{"status = 'x'; DROP TABLE runs; --": 1})
    with pytest.raises(TypeError, match="not a run column"):
        store._set(run_id, None, **{"name = 'x' --": 1})
    assert store.get(run_id).status is Status.RUNNING


def test_user_mistakes_raise_the_projects_own_errors():
    store = RunStore()
    run_id = store.create(_run(), "mnist")
    with pytest.raises(InvalidRunName):
        store.rename(run_id, "   ")
    assert store.rename(run_id, "  x" * 60) == ("  x" * 60).strip()[:100]
    for bad in ("../../etc", "", "20240101-000000-zzzzzz", "20240101-000000-abcdef/.."):
        with pytest.raises(RunNotFound, match="not a run id"):
            store.get(bad)
    with pytest.raises(RunNotFound, match="no run"):
        store.get("20240101-000000-abcdef")


def test_names_are_shown_with_control_characters_escaped():
    store = RunStore()
    run_id = store.create(_run(), "mnist", name="evil\x1b[31mred\x07\u202e")
    run = store.get(run_id)
    assert run.name == "evil\x1b[31mred\x07\u202e" and run.label == "evil\\x1b[31mred\\x07\\u202e"
    assert escape_controls("plain – ünïcode ✓") == "plain – ünïcode ✓"


def test_a_lost_store_is_rebuilt_from_the_run_folders(small_data, private_runs_dir):
    store = RunStore()
    done = store.create(_run(), "mnist", name="kept")
    execute_run(store, done, data=small_data)
    active = store.create(_run(), "mnist", name="was running", claim=True)
    before = store.get(done)
    (private_runs_dir / "runs.db").write_bytes(b"")  # emptied (a full disk, a bad copy)
    for suffix in ("-wal", "-shm"):
        (private_runs_dir / f"runs.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(BadRunStore, match="is empty but 2 run folder"):
        RunStore()
    rebuilt = RunStore(reimport=True)
    assert sorted(rebuilt.reimport()) == sorted([done, active])
    back = rebuilt.get(done)
    assert (back.name, back.status, back.test_accuracy, back.config) == (
        "kept",
        Status.COMPLETED,
        before.test_accuracy,
        before.config,
    )
    assert [m["epoch"] for m in rebuilt.metrics(done, "epoch")] == [1, 2]
    assert rebuilt.get(active).status is Status.INTERRUPTED  # it cannot still be running
    assert rebuilt.reimport() == []  # nothing twice


def test_a_file_that_is_not_a_store_is_refused_in_one_line(private_runs_dir):
    private_runs_dir.mkdir(parents=True)
    (private_runs_dir / "runs.db").write_text("hello, I am a text file\n" * 10)
    with pytest.raises(BadRunStore, match=r"is not a CNN Lab run store \(not an SQLite database\); move it away"):
        RunStore()
    (private_runs_dir / "runs.db").unlink()
    con = sqlite3.connect(private_runs_dir / "runs.db")
    con.execute("CREATE TABLE photos (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(BadRunStore, match="holds other tables: photos"):
        RunStore()


def test_a_truncated_store_fails_soft(private_runs_dir):
    store = RunStore()
    for i in range(40):
        store.create(_run(), "mnist", name=f"run {i}")
    with sqlite3.connect(private_runs_dir / "runs.db") as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = (private_runs_dir / "runs.db").read_bytes()
    (private_runs_dir / "runs.db").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadRunStore) as err:
        RunStore().list()
    assert "\n" not in str(err.value)


def test_opening_a_healthy_store_writes_nothing(private_runs_dir):
    store = RunStore()
    store.create(_run(), "mnist")
    with sqlite3.connect(private_runs_dir / "runs.db") as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = {p.name: p.read_bytes() for p in private_runs_dir.glob("runs.db*")}
    RunStore().list()
    assert {p.name: p.read_bytes() for p in private_runs_dir.glob("runs.db*") if p.name in before} == before


def test_a_run_cannot_be_renamed_to_a_name_another_run_has():
    store = RunStore()
    first = store.create(RunConfig(), dataset="mnist", name="baseline")
    second = store.create(RunConfig(), dataset="mnist", name="trial")
    with pytest.raises(InvalidRunName, match="another run is already called “Baseline”"):
        store.rename(second, " Baseline ")  # names are compared as a person reads them: case and spaces aside
    assert store.get(second).name == "trial"
    assert store.rename(first, "baseline") == "baseline"  # its own name again is no clash
