"""Damaged, foreign, read-only and emptied run stores through ``cnn-lab runs`` and ``cnn-lab train``: one line,
no traceback, and the store is never replaced or rewritten behind the user's back."""

import gc
import hashlib
import shutil
import sqlite3
import subprocess
import warnings
from pathlib import Path

import pytest

from cnn_core.errors import BadRunStore
from cnn_core.runs import RunStore
from tests.reliability.conftest import changes, copy_store, error_line, run_folders, tiny_run_config

NOT_A_STORE = "is not a CNN Lab run store"


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_tiny(sandbox, small_idx, **kw):
    return sandbox.cli("train", "--data-dir", str(small_idx), "--epochs", "1", "--batch-size", "64", **kw)


# -- stores that cannot be opened --------------------------------------------------------------------------------


def text_file(runs, finished):
    runs.mkdir()
    (runs / "runs.db").write_text("these are my notes, not a database\n")


def other_sqlite_app(runs, finished):
    runs.mkdir()
    with sqlite3.connect(runs / "runs.db") as con:
        con.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    con.close()


def truncated_to_half(runs, finished):
    copy_store(finished, runs)
    db = runs / "runs.db"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def db_is_a_folder(runs, finished):
    (runs / "runs.db").mkdir(parents=True)


BROKEN = {
    "text-file": (text_file, f"{NOT_A_STORE} (not an SQLite database); move it away or set CNN_LAB_RUNS"),
    "other-sqlite-app": (other_sqlite_app, f"{NOT_A_STORE} (it holds other tables: invoices)"),
    "truncated-to-half": (truncated_to_half, f"{NOT_A_STORE} (database disk image is malformed)"),
    "db-is-a-folder": (db_is_a_folder, "cannot open the run store in"),
}


@pytest.mark.parametrize("build, message", BROKEN.values(), ids=BROKEN.keys())
def test_a_store_that_cannot_be_opened_is_one_line_and_left_as_it_was(
    sandbox, finished_store, small_idx, build, message
):
    """Both ``cnn-lab runs`` and a ``cnn-lab train`` (refused before it records anything)."""
    build(sandbox.runs, finished_store)
    before = sandbox.snapshot()
    for out in (sandbox.cli("runs"), train_tiny(sandbox, small_idx)):
        assert out.returncode == 2
        assert message in error_line(out)
    after = sandbox.snapshot()
    assert after == before, changes(before, after)


def test_a_store_folder_that_is_a_file_is_one_line(sandbox):
    sandbox.runs.write_text("not a folder")
    out = sandbox.cli("runs")
    assert out.returncode == 2
    assert "cannot open the run store in" in error_line(out)
    assert sandbox.runs.read_text() == "not a folder"


# -- read-only ---------------------------------------------------------------------------------------------------

REMOUNT_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'


@pytest.fixture
def read_only(sandbox, finished_store):
    """The store on a read-only bind mount (a private mount namespace: nothing else sees it).

    The suite runs as root, where chmod 0o444/0o555 does not stop a write, so permissions cannot show this case.
    """
    copy_store(finished_store, sandbox.runs)
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1): cannot make a read-only bind mount, and chmod does not stop root")
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", REMOUNT_READ_ONLY, str(sandbox.runs), "touch", str(sandbox.runs / "probe")],
        capture_output=True,
        text=True,
    )
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only bind mount here (unshare -rm): {probe.stderr.strip()[:200]}")

    def cli(*args):
        command = ["unshare", "-rm", "sh", "-c", REMOUNT_READ_ONLY, str(sandbox.runs), *sandbox.command(*args)]
        return subprocess.run(
            command, cwd=sandbox.cwd, env=sandbox.environ(), capture_output=True, text=True, timeout=180
        )

    return cli


@pytest.mark.slow
def test_a_read_only_store_is_one_line_and_no_traceback(sandbox, read_only, small_idx):
    before = sandbox.snapshot()
    for args in (["runs"], ["train", "--data-dir", str(small_idx), "--epochs", "1"]):
        out = read_only(*args)
        assert out.returncode == 2
        error_line(out)
    after = sandbox.snapshot()
    assert after == before, changes(before, after)


def test_a_read_only_store_is_not_called_a_foreign_file(read_only):
    line = error_line(read_only("runs"))
    assert NOT_A_STORE not in line and "move it away" not in line, line


# -- opening does not write --------------------------------------------------------------------------------------


def test_listing_a_healthy_store_does_not_change_its_database_or_any_file(sandbox, finished_store):
    copy_store(finished_store, sandbox.runs)
    db = sandbox.runs / "runs.db"
    digest, mtime = sha256(db), db.stat().st_mtime_ns
    before = sandbox.snapshot()
    for args in (["runs"], ["runs", "--json"]):
        out = sandbox.cli(*args)
        assert out.returncode == 0, out.stderr
        assert {"alpha", "beta", "gamma"} <= set(out.stdout.replace('"', " ").split())
    assert sha256(db) == digest and db.stat().st_mtime_ns == mtime
    after = sandbox.snapshot()
    assert after == before, changes(before, after)


def test_opening_a_store_closes_the_files_it_opens(finished_store):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        RunStore(finished_store).list()
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []


def test_a_store_from_an_older_version_is_upgraded_in_place_and_keeps_its_runs(sandbox, finished_store):
    """A store made before ``metrics.total_steps`` existed gains the column: the one case opening has to write."""
    copy_store(finished_store, sandbox.runs)
    con = sqlite3.connect(sandbox.runs / "runs.db")
    con.execute("ALTER TABLE metrics DROP COLUMN total_steps")
    con.commit()
    con.close()
    out = sandbox.cli("runs", "--json")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count('"id"') == 3
    con = sqlite3.connect(sandbox.runs / "runs.db")
    assert "total_steps" in {row[1] for row in con.execute("PRAGMA table_info(metrics)")}
    con.close()


# -- emptied or lost database beside run folders -----------------------------------------------------------------


def runs_by_name(store: RunStore) -> dict:
    return {
        r.name: (r.id, r.status, r.test_accuracy, r.val_accuracy, r.epochs_done, r.config, r.error)
        for r in store.list()
    }


def epoch_metrics(store: RunStore, run_id: str) -> list:
    keys = ("epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy", "lr")
    return [{k: m[k] for k in keys} for m in store.metrics(run_id, "epoch")]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["zero-length", "deleted"])
def test_an_emptied_store_beside_run_folders_is_refused_then_rebuilt_by_reimport(
    sandbox, finished_store, small_idx, damage
):
    copy_store(finished_store, sandbox.runs)
    original = RunStore(finished_store)
    expected = runs_by_name(original)
    alpha = expected["alpha"][0]
    db = sandbox.runs / "runs.db"
    if damage == "zero-length":
        db.write_bytes(b"")
    else:
        db.unlink()
    before = sandbox.snapshot()

    for out in (sandbox.cli("runs"), train_tiny(sandbox, small_idx)):
        assert out.returncode == 2
        line = error_line(out)
        assert "3 run folder(s) are beside it" in line and "cnn-lab runs --reimport" in line
    after = sandbox.snapshot()
    assert after == before, changes(before, after)  # not replaced, not created, no run added

    out = sandbox.cli("runs", "--reimport")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    rebuilt = RunStore(sandbox.runs)
    got = runs_by_name(rebuilt)
    assert set(got) == {"alpha", "beta", "gamma"}
    for name in ("alpha", "gamma"):  # completed and failed; beta (cancelled while queued): see the next test
        assert got[name] == expected[name]
    assert epoch_metrics(rebuilt, alpha) == epoch_metrics(original, alpha) != []
    assert run_folders(sandbox.runs) == run_folders(finished_store)


def test_reimport_brings_back_a_cancelled_run_as_stopped(sandbox, finished_store):
    copy_store(finished_store, sandbox.runs)
    (sandbox.runs / "runs.db").write_bytes(b"")
    assert sandbox.cli("runs", "--reimport").returncode == 0
    got = runs_by_name(RunStore(sandbox.runs))["beta"]
    assert got[1] == "stopped", got[1:2] + got[-1:]


def test_reimport_reports_how_many_runs_it_brought_back(sandbox, finished_store):
    copy_store(finished_store, sandbox.runs)
    (sandbox.runs / "runs.db").write_bytes(b"")
    out = sandbox.cli("runs", "--reimport")
    assert out.returncode == 0
    assert "re-imported 3 run folder(s)" in out.stderr, out.stderr


# -- damage that SQLite itself does not notice -------------------------------------------------------------------


def test_a_store_from_a_newer_version_is_one_line(sandbox, finished_store):
    copy_store(finished_store, sandbox.runs)
    con = sqlite3.connect(sandbox.runs / "runs.db")
    con.execute("ALTER TABLE runs ADD COLUMN tags TEXT")
    con.commit()
    con.close()
    out = sandbox.cli("runs")
    assert out.returncode in (0, 2)
    if out.returncode == 2:
        error_line(out)


def test_a_stored_config_that_is_not_utf8_is_one_line(sandbox, finished_store):
    copy_store(finished_store, sandbox.runs)
    db = sandbox.runs / "runs.db"
    data = bytearray(db.read_bytes())
    at = data.index(b'"model"')
    data[at + 1] = 0xFF
    db.write_bytes(data)
    out = sandbox.cli("runs")
    assert out.returncode == 2
    error_line(out)


@pytest.fixture(scope="module")
def busy_store(tmp_path_factory):
    """40 queued runs with 20 step metrics each (about 150 KB): enough rows for the runs table to span pages."""
    store = RunStore(tmp_path_factory.mktemp("busy") / "runs")
    for i in range(40):
        run_id = store.create(tiny_run_config(), dataset="mnist", name=f"run{i:02d}")
        for step in range(20):
            store.log_metric(run_id, {"kind": "step", "epoch": 1, "step": step, "loss": 0.5})
    return store.root


@pytest.mark.slow
def test_every_truncation_of_a_real_store_is_read_or_refused_with_bad_run_store(sandbox, busy_store, tmp_path):
    data = (busy_store / "runs.db").read_bytes()
    crashes = {}
    for size in [*range(0, len(data) - 8192, 4096), *range(len(data) - 8192, len(data), 64)]:
        root = tmp_path / f"cut-{size}"
        root.mkdir()
        (root / "runs.db").write_bytes(data[:size])
        try:
            RunStore(root).list()
        except BadRunStore:
            pass
        except Exception as err:  # noqa: BLE001 - the point is to catch whatever leaks
            crashes[size] = f"{type(err).__name__}: {err}"
        shutil.rmtree(root)
    if crashes:  # show the user-facing symptom at the first bad length
        size = min(crashes)
        sandbox.runs.mkdir()
        (sandbox.runs / "runs.db").write_bytes(data[:size])
        out = sandbox.cli("runs")
        assert "Traceback" not in out.stderr, f"{len(crashes)} lengths crash, e.g. {size}: {crashes[size]}"
    assert crashes == {}


def checkpoint_column(runs) -> dict[str, str | None]:
    con = sqlite3.connect(runs / "runs.db")
    try:
        return dict(con.execute("SELECT name, checkpoint FROM runs"))
    finally:
        con.close()


def test_a_moved_store_finds_its_checkpoints_in_their_new_place(tmp_path, finished_store):
    """The database keeps checkpoint paths relative to the store: move it and every run still opens."""
    from cnn_core.model.checkpoint import load_checkpoint

    moved = tmp_path / "elsewhere" / "runs"
    shutil.move(copy_store(finished_store, tmp_path / "first"), moved)
    alpha = next(r for r in RunStore(moved).list() if r.name == "alpha")
    assert alpha.checkpoint == str(moved / alpha.id / "model.safetensors")
    assert load_checkpoint(alpha.checkpoint).config is not None
    assert checkpoint_column(moved)["alpha"] == f"{alpha.id}/model.safetensors"
    record = (moved / alpha.id / "run.json").read_text()
    assert str(finished_store) not in record and str(tmp_path) not in record


def test_an_old_store_with_absolute_paths_is_migrated_when_opened(tmp_path, finished_store):
    """A store written before (absolute paths into a folder that has since moved) is rewritten on opening."""
    runs = copy_store(finished_store, tmp_path / "old")
    con = sqlite3.connect(runs / "runs.db")
    with con:
        con.execute(
            "UPDATE runs SET checkpoint = '/gone/away/runs/' || id || '/model.safetensors' WHERE name = 'alpha'"
        )
    con.close()
    alpha = next(r for r in RunStore(runs).list() if r.name == "alpha")
    assert alpha.checkpoint == str(runs / alpha.id / "model.safetensors") and Path(alpha.checkpoint).is_file()
    assert checkpoint_column(runs)["alpha"] == f"{alpha.id}/model.safetensors"


def test_processes_that_make_one_new_store_at_once_all_open_it(tmp_path):
    """A sweep's driver and the page listing its sweeps used to race to add the newer columns to a new store
    ("duplicate column name"); each column is now added once, by whoever takes the write lock first. Threads here,
    each with its own connection, as processes have."""
    import threading

    for attempt in range(5):
        folder, errors = tmp_path / f"store-{attempt}", []
        start = threading.Barrier(6)

        def open_it(folder=folder, errors=errors, start=start) -> None:
            start.wait()
            try:
                RunStore(folder)
            except Exception as err:  # what the race raised: BadRunStore, duplicate column name
                errors.append(err)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert RunStore(folder).list() == []
