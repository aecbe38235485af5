"""A shared lab: owners and sharing, another's private item answered like a missing one, administrators, server
folders under their roots, quotas, the fair queue (with a real job manager), and old stores migrating."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.data import library
from cnn_core.data.roots import may_read_folders, server_folder
from cnn_core.errors import DatasetNotFound, InvalidConfig, NotAllowed, RunNotFound
from cnn_core.jobs import JobManager, fair_order, limits
from cnn_core.jobs.fair import Wait
from cnn_core.jobs.quotas import check_dataset, check_run, check_sweep
from cnn_core.people import LOCAL, SHARED_WORKSPACE, Person, cli_person, from_claims
from cnn_core.runs import Run, RunStore, Status
from tests.imagesets import make_image_folder, zip_folder
from tests.polling import wait_until

ALICE = Person("alice@example.com", "Alice", email="alice@example.com")
BOB = Person("bob@example.com", "Bob", email="bob@example.com")
TEACHER = Person("teacher@example.com", "Teacher", admin=True, email="teacher@example.com")


def _run(epochs: int = 1) -> RunConfig:
    return RunConfig(train=TrainConfig(epochs=epochs, device="cpu", batch_size=128))


@pytest.fixture
def store():
    return RunStore()


def _missing_message(store: RunStore, run_id: str) -> str:
    """What the store says for an id nobody has (same shape as ``run_id``)."""
    ghost = run_id[:-6] + ("000000" if not run_id.endswith("000000") else "111111")
    with pytest.raises(RunNotFound) as err:
        store.get(ghost)
    return str(err.value).replace(ghost, run_id)


# -- people -----------------------------------------------------------------------------------------------------


def test_a_signed_in_person_is_known_by_email_and_an_admin_only_when_listed(monkeypatch):
    monkeypatch.setenv("CNN_LAB_ADMINS", " Teacher@Example.com , other@x.org")
    teacher = from_claims({"sub": "t-1", "email": "TEACHER@example.com", "email_verified": True})
    alice = from_claims({"sub": "a-1", "email": "alice@example.com", "name": "Alice"})
    assert (teacher.id, teacher.admin, alice.id, alice.admin, alice.name) == (
        "teacher@example.com",
        True,
        "alice@example.com",
        False,
        "Alice",
    )
    # an address the provider did not verify is no identity (and no way to an administrator's rights)
    spoof = from_claims({"sub": "x-9", "email": "teacher@example.com", "email_verified": False})
    assert spoof.id == "sub:x-9" and not spoof.admin
    assert LOCAL.admin and LOCAL.local and not SHARED_WORKSPACE.admin and SHARED_WORKSPACE.local


def test_the_cli_acts_as_the_local_owner_unless_cnn_lab_user_is_set(monkeypatch):
    assert cli_person() is LOCAL
    monkeypatch.setenv("CNN_LAB_USER", "alice@example.com")
    assert cli_person().id == "alice@example.com" and not cli_person().admin


# -- runs and sweeps ----------------------------------------------------------------------------------------------


def test_each_person_sees_their_own_runs_and_the_shared_ones(store):
    mine = store.create(_run(), "mnist", name="a", owner=ALICE.id)
    theirs = store.create(_run(), "mnist", name="b", owner=BOB.id)
    reference = store.create(_run(), "mnist", name="reference", owner=TEACHER.id)
    store.share(reference, True, by=TEACHER)
    assert {r.id for r in store.list(visible_to=ALICE)} == {mine, reference}
    assert {r.id for r in store.list(visible_to=BOB)} == {theirs, reference}
    assert {r.id for r in store.list(visible_to=TEACHER)} == {mine, theirs, reference}  # an administrator: all
    assert store.get(reference, visible_to=ALICE).shared


def test_another_persons_private_run_is_answered_exactly_like_a_missing_one(store):
    theirs = store.create(_run(), "mnist", owner=BOB.id)
    expected = _missing_message(store, theirs)
    for attempt in (
        lambda: store.get(theirs, visible_to=ALICE),
        lambda: store.rename(theirs, "mine now", by=ALICE),
        lambda: store.request_stop(theirs, by=ALICE),
        lambda: store.share(theirs, True, by=ALICE),
        lambda: store.delete(theirs, by=ALICE),
    ):
        with pytest.raises(RunNotFound) as err:
            attempt()
        assert str(err.value) == expected
    assert store.get(theirs).status == Status.QUEUED and store.get(theirs).name != "mine now"


def test_a_shared_run_is_seen_but_changed_only_by_its_owner_or_an_administrator(store):
    reference = store.create(_run(), "mnist", name="reference", owner=TEACHER.id, shared=True)
    for attempt in (
        lambda: store.rename(reference, "x", by=ALICE),
        lambda: store.request_stop(reference, by=ALICE),
        lambda: store.delete(reference, by=ALICE),
    ):
        with pytest.raises(NotAllowed, match="only its owner or an administrator"):
            attempt()
    store.request_stop(reference, by=TEACHER)
    assert store.rename(reference, "class reference", by=TEACHER) == "class reference"
    private = store.create(_run(), "mnist", owner=ALICE.id)
    store.request_stop(private, by=TEACHER)  # an administrator acts on anyone's
    store.delete(private, by=TEACHER)
    with pytest.raises(RunNotFound):
        store.get(private)


def test_names_are_unique_per_owner_only(store):
    a = store.create(_run(), "mnist", name="first", owner=ALICE.id)
    b = store.create(_run(), "mnist", name="other", owner=BOB.id)
    assert store.rename(b, "first", by=BOB) == "first"  # Bob's "first" is told apart from Alice's by its owner
    store.create(_run(), "mnist", name="second", owner=ALICE.id)
    with pytest.raises(Exception, match="already called"):
        store.rename(a, "second", by=ALICE)


def test_a_sweep_and_its_trials_are_their_owners_and_shared_together(store):
    from cnn_core.config.sweep import SweepConfig

    sweep_id = store.sweeps.create(
        SweepConfig.from_dict({"space": {"train.lr": {"grid": [0.01, 0.001]}}}), owner=ALICE.id
    )
    trial = store.create(_run(), "mnist", group_id=sweep_id, owner=ALICE.id)
    assert [s.id for s in store.sweeps.list(visible_to=BOB)] == []
    with pytest.raises(RunNotFound, match="no sweep"):
        store.sweeps.get(sweep_id, visible_to=BOB)
    with pytest.raises(RunNotFound):
        store.sweeps.request_stop(sweep_id, by=BOB)
    store.sweeps.share(sweep_id, True, by=ALICE)
    assert store.sweeps.get(sweep_id, visible_to=BOB).shared
    assert store.get(trial, visible_to=BOB).shared  # its trials went with it
    with pytest.raises(NotAllowed):
        store.sweeps.request_stop(sweep_id, by=BOB)


def test_a_store_from_before_owners_migrates_with_everything_the_local_owners(tmp_path):
    store = RunStore(tmp_path / "old")
    ids = [store.create(_run(), "mnist", name=f"r{i}") for i in range(3)]
    store.log_metric(ids[0], {"kind": "epoch", "epoch": 1, "step": 10, "loss": 0.5})
    with sqlite3.connect(store.db_path) as con:  # the schema an older CNN Lab wrote
        for table, column in (("runs", "owner"), ("runs", "shared"), ("runs", "priority")):
            con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        con.execute("ALTER TABLE sweeps DROP COLUMN owner")
        con.execute("ALTER TABLE sweeps DROP COLUMN shared")
    reopened = RunStore(tmp_path / "old")
    runs = reopened.list(visible_to=LOCAL)
    assert sorted(r.id for r in runs) == sorted(ids) and {r.owner for r in runs} == {"local"}
    assert len(reopened.metrics(ids[0])) == 1  # nothing lost
    assert reopened.list(visible_to=ALICE) == []  # and nobody else's


# -- datasets ----------------------------------------------------------------------------------------------------


@pytest.fixture
def pictures(tmp_path):
    return zip_folder(make_image_folder(tmp_path / "pics", per_class=12, classes=("red-disc", "blue-disc")))


def test_datasets_have_owners_and_anothers_private_one_is_no_dataset(pictures):
    library.add_dataset("alices", pictures, 28, owner=ALICE.id)
    library.add_dataset("class-set", pictures, 28, owner=TEACHER.id)
    library.share_dataset("class-set", True, by=TEACHER)
    assert [d.name for d in library.list_datasets(visible_to=BOB)] == ["class-set"]
    with pytest.raises(DatasetNotFound) as hidden:
        library.get_dataset("alices", visible_to=BOB)
    with pytest.raises(DatasetNotFound) as missing:
        library.get_dataset("nobodys", visible_to=BOB)
    assert str(hidden.value) == str(missing.value).replace("nobodys", "alices")
    with pytest.raises(DatasetNotFound):
        library.remove_dataset("alices", by=BOB)
    with pytest.raises(NotAllowed):
        library.remove_dataset("class-set", by=BOB)
    with pytest.raises(NotAllowed):
        library.set_class_order("class-set", ["blue-disc", "red-disc"], by=BOB)
    library.remove_dataset("alices", by=TEACHER)
    assert [d.name for d in library.list_datasets()] == ["class-set"]


def test_a_dataset_from_before_owners_is_the_local_owners(pictures):
    entry = library.add_dataset("old", pictures, 28)
    path = library.folder_of("old") / "dataset.json"
    record = json.loads(path.read_text())
    del record["owner"], record["shared"]
    path.write_text(json.dumps(record))
    assert library.get_dataset("old").owner == "local" and library.list_datasets(visible_to=ALICE) == []
    assert library.get_dataset("old", visible_to=LOCAL).classes == entry.classes


def test_the_job_manager_refuses_a_run_on_another_persons_private_dataset(pictures):
    library.add_dataset("alices", pictures, 28, owner=ALICE.id)
    manager = JobManager(RunStore(), start_thread=False)
    with pytest.raises(DatasetNotFound):
        manager.submit(_run(), dataset="alices", owner=BOB)
    assert manager.store.list() == []


# -- server folders ----------------------------------------------------------------------------------------------


def test_server_folders_are_for_administrators_under_their_roots_only(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "class-data" / "shapes", per_class=2, classes=("red-disc", "blue-disc")).parent
    outside = make_image_folder(tmp_path / "private" / "shapes", per_class=2, classes=("red-disc", "blue-disc"))
    (root / "escape").symlink_to(outside)  # a link inside the root to a folder outside it
    with pytest.raises(NotAllowed, match="for administrators"):
        server_folder(root / "shapes", ALICE)  # never a server path for a visitor, roots or not
    assert not may_read_folders(ALICE)
    with pytest.raises(NotAllowed, match="CNN_LAB_FOLDER_ROOTS"):
        server_folder(root / "shapes", TEACHER)  # a signed-in administrator needs roots set
    assert server_folder(outside, LOCAL) == outside.resolve()  # the single user at their machine: as before

    monkeypatch.setenv("CNN_LAB_FOLDER_ROOTS", f"{root}{os.pathsep}/nonexistent-root")
    assert server_folder(root / "shapes", TEACHER) == (root / "shapes").resolve()
    assert may_read_folders(TEACHER) and may_read_folders(LOCAL)
    for refused in (outside, root / "escape", root / ".." / "private" / "shapes"):
        with pytest.raises(NotAllowed, match="outside the folders"):
            server_folder(refused, TEACHER)
    with pytest.raises(NotAllowed, match="outside the folders"):
        server_folder(outside, LOCAL)  # roots bind everyone once they are set
    with pytest.raises(NotAllowed, match="for administrators"):
        server_folder(root / "shapes", ALICE)


def test_the_job_manager_refuses_a_visitors_data_dir(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", per_class=2, classes=("red-disc", "blue-disc"))
    manager = JobManager(RunStore(), start_thread=False)
    with pytest.raises(NotAllowed, match="for administrators"):
        manager.submit(_run(), dataset="shapes", data_dir=str(folder), owner=ALICE)
    with pytest.raises(NotAllowed, match="administrator"):
        manager.submit_sweep(_sweep(), storage=str(tmp_path / "tune"), owner=ALICE)


def _sweep():
    from cnn_core.config.sweep import SweepConfig

    return SweepConfig.from_dict({"space": {"train.lr": {"grid": [0.01, 0.02]}}, "base": _run().to_dict()})


# -- quotas ------------------------------------------------------------------------------------------------------


def test_quotas_come_from_a_file_and_the_environment_wins(tmp_path, monkeypatch):
    assert limits().runs == 3
    config = tmp_path / "quotas.toml"
    config.write_text("[quotas]\nruns = 5\nrun_disk_mb = 10\n")
    monkeypatch.setenv("CNN_LAB_QUOTAS", str(config))
    monkeypatch.setenv("CNN_LAB_QUOTA_RUNS", "2")
    assert (limits().runs, limits().run_disk_mb, limits().sweeps) == (2, 10, 1)
    monkeypatch.setenv("CNN_LAB_QUOTA_RUNS", "many")
    with pytest.raises(InvalidConfig, match="whole numbers"):
        limits()
    config.write_text("[quotas]\ncpus = 5\n")
    monkeypatch.delenv("CNN_LAB_QUOTA_RUNS")
    with pytest.raises(InvalidConfig, match="unknown quota"):
        limits()


def test_a_person_past_their_share_gets_one_line_and_administrators_none(store, monkeypatch, pictures):
    monkeypatch.setenv("CNN_LAB_QUOTA_RUNS", "2")
    manager = JobManager(store, start_thread=False)
    manager.submit(_run(), owner=ALICE)
    manager.submit(_run(), owner=ALICE)
    with pytest.raises(NotAllowed, match=r"2 run\(s\) queued or running and your limit is 2"):
        manager.submit(_run(), owner=ALICE)
    manager.submit(_run(), owner=BOB)  # one person's limit is theirs alone
    for _ in range(3):
        manager.submit(_run(), owner=TEACHER)
    check_run(store, LOCAL)
    monkeypatch.setenv("CNN_LAB_QUOTA_SWEEPS", "0")
    with pytest.raises(NotAllowed, match="sweep"):
        check_sweep(store, BOB)
    monkeypatch.setenv("CNN_LAB_QUOTA_DATASET_DISK_MB", "1")
    check_dataset(ALICE, 1000)
    with pytest.raises(NotAllowed, match="your datasets take 2 MB and your limit is 1 MB"):
        check_dataset(ALICE, 2 * 2**20)


def test_the_run_disk_quota_counts_a_persons_run_folders(store, monkeypatch):
    run_id = store.create(_run(), "mnist", owner=ALICE.id)
    store.request_stop(run_id)
    (store.run_dir(run_id) / "model.safetensors").write_bytes(b"\0" * (3 * 2**20))
    monkeypatch.setenv("CNN_LAB_QUOTA_RUN_DISK_MB", "2")
    with pytest.raises(NotAllowed, match="your runs take 3 MB and your limit is 2 MB: delete runs"):
        check_run(store, ALICE)
    check_run(store, BOB)


# -- the fair queue ----------------------------------------------------------------------------------------------


def _queued(run_id: str, owner: str, created: float, **kw) -> Run:
    fields = dict(
        id=run_id,
        name=run_id,
        status=Status.QUEUED,
        config=_run(),
        dataset="mnist",
        data_dir=None,
        device=None,
        group_id=None,
        created=created,
        started=None,
        ended=None,
        heartbeat=None,
        pid=None,
        epochs_done=0,
        test_accuracy=None,
        test_loss=None,
        val_accuracy=None,
        seconds=None,
        images_per_s=None,
        checkpoint=None,
        error=None,
        stop_requested=False,
        owner=owner,
    )
    fields.update(kw)
    return Run(**fields)


def test_fair_order_is_round_robin_across_people():
    a = [_queued(f"a{i}", "alice", 10 + i / 100) for i in range(2, 6)]  # queued together
    a_first = _queued("a1", "alice", 10, status=Status.RUNNING, started=10.5)
    b = [_queued("b1", "bob", 20)]
    assert [r.id for r in fair_order([*a, *b], [a_first])] == ["b1", "a2", "a3", "a4", "a5"]
    # Bob's run started and Alice's first ended; Carol arrives: she goes before Alice's second
    c = [_queued("c1", "carol", 30), _queued("c2", "carol", 31)]
    served = [
        _queued("a1", "alice", 10, status=Status.COMPLETED, started=10.5),
        _queued("b1", "bob", 20, status=Status.RUNNING, started=25),
    ]
    assert [r.id for r in fair_order([*a, *c], served)] == ["c1", "a2", "c2", "a3", "a4", "a5"]
    # an administrator's move comes first
    moved = [*a[:3], _queued("a5", "alice", 14, priority=1)]
    assert fair_order([*moved, *b], [a_first])[0].id == "a5"


def test_a_wait_says_its_place_and_an_estimate():
    assert Wait(1, 12).text == "next in line · starts in about 12 s"
    assert Wait(3, 300).text == "3rd in line · starts in about 5 min"
    assert Wait(12, None).text.startswith("12th in line · no estimate")


def test_with_a_real_job_manager_bs_one_run_starts_second_after_as_five(store, monkeypatch):
    monkeypatch.setenv("CNN_LAB_QUOTA_RUNS", "10")
    manager = JobManager(store, max_concurrent=1, start_thread=False)
    try:
        alices = [manager.submit(_run(epochs=50), name=f"alice-{i}", owner=ALICE) for i in range(5)]
        manager.pump()  # Alice's first starts at once
        assert store.get(alices[0]).status == Status.RUNNING
        bobs = manager.submit(_run(epochs=50), name="bob-1", owner=BOB)
        assert manager.wait_of(bobs).position == 1 and manager.wait_of(alices[1]).position == 2
        manager.stop(alices[0], by=ALICE)
        wait_until(lambda: (manager.pump(), store.get(alices[0]).finished)[1], 120, "Alice's first run to stop")
        wait_until(lambda: (manager.pump(), store.get(bobs).status == Status.RUNNING)[1], 60, "Bob's run to start")
        assert store.get(alices[1]).status == Status.QUEUED
        started = sorted((r for r in store.list() if r.started), key=lambda r: r.started)
        assert [r.id for r in started] == [alices[0], bobs]
    finally:
        manager.close(stop_runs=True)
        for run in store.list(status=(Status.RUNNING,)):
            wait_until(lambda run=run: (manager.pump(), store.get(run.id).finished)[1], 120, "runs to stop")


# -- the CLI -----------------------------------------------------------------------------------------------------


def test_the_cli_as_a_non_admin_lists_only_what_that_person_may_see(store, private_runs_dir):
    mine = store.create(_run(), "mnist", name="alices", owner=ALICE.id)
    store.create(_run(), "mnist", name="bobs", owner=BOB.id)
    env = {**os.environ, "CNN_LAB_USER": "alice@example.com"}
    listed = subprocess.run(
        [sys.executable, "-m", "cnn_core", "runs", "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [mine]
    everyone = subprocess.run(
        [sys.executable, "-m", "cnn_core", "runs", "--json"], capture_output=True, text=True, check=True
    )
    assert len(everyone.stdout.splitlines()) == 2  # the local owner: the whole store, as before


def test_an_administrator_moves_a_queued_run_to_the_front_or_the_back(store, monkeypatch):
    monkeypatch.setenv("CNN_LAB_QUOTA_RUNS", "10")
    manager = JobManager(store, start_thread=False)
    first, second, third = (manager.submit(_run(), owner=ALICE) for _ in range(3))
    bobs = manager.submit(_run(), owner=BOB)
    assert [r.id for r in manager.queue()] == [first, bobs, second, third]
    with pytest.raises(NotAllowed, match="only an administrator"):
        manager.move(third, first=True, by=ALICE)
    manager.move(third, first=True, by=TEACHER)
    manager.move(first, first=False, by=TEACHER)
    assert [r.id for r in manager.queue()] == [third, bobs, second, first]
    manager.stop(bobs, by=TEACHER)  # and cancels anyone's
    assert store.get(bobs).status == Status.STOPPED


def test_resume_through_the_job_manager_is_the_owners_and_refused_in_one_line_with_nothing_saved(store):
    from cnn_core.errors import CannotResume

    manager = JobManager(store, start_thread=False)
    run_id = manager.submit(_run(), owner=ALICE)
    manager.stop(run_id, by=ALICE)  # cancelled while queued: no epoch saved
    with pytest.raises(RunNotFound):
        manager.resume(run_id, by=BOB)
    with pytest.raises(CannotResume, match="no saved training state"):
        manager.resume(run_id, by=ALICE)
    assert store.get(run_id).status == Status.STOPPED
