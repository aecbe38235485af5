"""Nothing is left behind (temp files of interrupted checkpoint writes go when a train starts, and are never
listed as epochs), a successful train changes nothing outside its own run folder, run names are printed escaped,
and a run id is checked before any path is built from it."""

import json
import os
import subprocess
import sys
import time
import unicodedata

import pytest

from cnn_core.model.checkpoint import PARTIAL_WRITE, remove_partial_writes
from cnn_core.runs import RunStore
from tests.reliability.conftest import STORE_FILES, changes, copy_store, make_sandbox, run_folders, under

OLD = time.time() - 3600  # an hour ago: well past remove_partial_writes' one minute


def aged(path, mtime=OLD):
    os.utime(path, (mtime, mtime), follow_symlinks=False)
    return path


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory, finished_store, small_idx):
    """A store with leftovers of interrupted writes, before and after one real ``cnn-lab train --epochs 1``."""
    box = make_sandbox(tmp_path_factory.mktemp("leftovers") / "box")
    copy_store(finished_store, box.runs)
    store = RunStore(box.runs)
    alpha = next(r for r in store.list() if r.name == "alpha")
    folder = store.run_dir(alpha.id)
    outside = box.root / "precious.txt"
    outside.write_text("not the store's to delete")
    paths = {
        "old-epoch": folder / "epochs" / ".epoch_002.safetensors.k2j4h5g6.tmp",
        "old-record": folder / ".run.json.a1b2c3d4.tmp",
        "fresh": folder / "epochs" / ".epoch_003.safetensors.z9y8x7w6.tmp",  # a writer saving right now
        "unrelated-tmp": folder / "notes.tmp",
        "symlink": folder / ".evil.safetensors.q1w2e3r4.tmp",
        "non-run-folder": box.runs / "my-notes" / ".draft.txt.m3n4b5v6.tmp",
    }
    for key, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if key == "symlink":
            os.symlink(outside, path)
        else:
            path.write_bytes(b"half a checkpoint")
        if key != "fresh":
            aged(path)
    listed_before = store.epoch_checkpoints(alpha.id)
    before = box.snapshot()
    out = box.cli("train", "--data-dir", str(small_idx), "--epochs", "1", "--batch-size", "32")
    return {"box": box, "paths": paths, "before": before, "out": out, "alpha": alpha, "listed": listed_before}


@pytest.mark.slow
def test_leftovers_of_interrupted_checkpoint_writes_go_when_a_train_starts(cleaned):
    assert cleaned["out"].returncode == 0, cleaned["out"].stderr
    paths = cleaned["paths"]
    assert not paths["old-epoch"].exists() and not paths["old-record"].exists()
    assert paths["fresh"].exists(), "a temp file younger than a minute may belong to a writer at work"
    assert paths["unrelated-tmp"].exists()
    assert paths["symlink"].is_symlink() and (cleaned["box"].root / "precious.txt").read_text()
    assert cleaned["listed"] and not [p for p in cleaned["listed"] if PARTIAL_WRITE.fullmatch(p.name)]


@pytest.mark.slow
def test_a_train_changes_nothing_outside_its_own_run_folder_but_the_leftovers(cleaned):
    box = cleaned["box"]
    new = sorted(set(run_folders(box.runs)) - {p.split("/")[1] for p in cleaned["before"] if p.count("/") == 1})
    assert len(new) == 1
    leftovers = {
        p.relative_to(box.root).as_posix() for k, p in cleaned["paths"].items() if k in ("old-epoch", "old-record")
    }
    ignore = under(*STORE_FILES, f"runs/{new[0]}", *leftovers, "runs/my-notes")
    after = box.snapshot(ignore)
    assert after == {k: v for k, v in cleaned["before"].items() if not ignore(k)}, changes(cleaned["before"], after)


@pytest.mark.slow
def test_a_temp_file_outside_any_run_folder_is_not_the_trains_to_delete(cleaned):
    assert cleaned["paths"]["non-run-folder"].exists()


def test_epoch_checkpoints_never_lists_a_temp_file(sandbox, finished_store):
    copy_store(finished_store, sandbox.runs)
    store = RunStore(sandbox.runs)
    alpha = next(r for r in store.list() if r.name == "alpha")
    epochs = store.run_dir(alpha.id) / "epochs"
    real = store.epoch_checkpoints(alpha.id)
    for name in (".epoch_002.safetensors.k2j4h5g6.tmp", ".epoch_001.safetensors.aaaaaaaa.tmp"):
        (epochs / name).write_bytes(b"half")
        assert PARTIAL_WRITE.fullmatch(name)
    fresh = epochs / ".epoch_003.safetensors.bbbbbbbb.tmp"
    fresh.write_bytes(b"half")
    assert store.epoch_checkpoints(alpha.id) == real != []
    removed = remove_partial_writes(sandbox.runs)
    assert fresh not in removed  # younger than a minute
    assert store.epoch_checkpoints(alpha.id) == real


# -- names and ids -----------------------------------------------------------------------------------------------

NAMES = {
    "escape-and-bell": ("evil\x1b[31mred\x07", "evil\\x1b[31mred\\x07"),
    "newline": ("two\nlines", "two\\nlines"),
    "right-to-left-override": ("abc\u202edcba", "abc\\u202edcba"),
}


def has_controls(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf") and c != "\n" for c in text)


@pytest.mark.parametrize("name, shown", NAMES.values(), ids=NAMES.keys())
def test_a_run_name_with_control_characters_is_printed_escaped(sandbox, name, shown):
    from cnn_core.config import RunConfig

    run_id = RunStore(sandbox.runs).create(RunConfig(), dataset="mnist", name=name)
    out = sandbox.cli("runs")
    assert out.returncode == 0, out.stderr
    assert not has_controls(out.stdout), repr(out.stdout)
    assert out.stdout.splitlines() == [f"{run_id}  {'queued':<11} {'-':>7}  {shown}"]
    out = sandbox.cli("runs", "--json")
    assert not has_controls(out.stdout)
    assert json.loads(out.stdout)["name"] == name  # JSON escapes it and keeps it exact


def test_a_long_name_is_cut_to_100_characters(sandbox):
    from cnn_core.config import RunConfig

    store = RunStore(sandbox.runs)
    run_id = store.create(RunConfig(), dataset="mnist", name="x" * 10_000)
    assert store.get(run_id).name == "x" * 100


BAD_IDS = ["../../etc", "/etc/passwd", "", "20261127-152709-7961ca/../../etc"]
PROBE = """
import json, sys
from cnn_core.errors import RunNotFound
from cnn_core.runs import RunStore
store = RunStore(sys.argv[1])
run_id = json.loads(sys.argv[2])
root = str(store.root)
events = []
def hook(event, args):
    if event == "sqlite3.connect" or (
        event.startswith(("open", "os.", "shutil.", "glob.")) and any(root in str(a) or "etc" in str(a) for a in args)
    ):
        events.append([event, [str(a) for a in args]])
sys.addaudithook(hook)
calls = {
    "get": lambda: store.get(run_id),
    "run_dir": lambda: store.run_dir(run_id),
    "epoch_checkpoints": lambda: store.epoch_checkpoints(run_id),
    "delete": lambda: store.delete(run_id),
    "rename": lambda: store.rename(run_id, "x"),
    "request_stop": lambda: store.request_stop(run_id),
    "interrupt": lambda: store.interrupt(run_id, "x"),
}
result = {}
for name, call in calls.items():
    events.clear()
    try:
        call()
        raised = None
    except Exception as err:
        raised = type(err).__name__
    result[name] = [raised, list(events)]
print(json.dumps(result))
"""


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=[repr(i) for i in BAD_IDS])
def test_a_run_id_that_is_a_path_is_refused_before_touching_the_filesystem(sandbox, bad_id):
    """Every RunStore method taking an id raises RunNotFound with no open, listdir, mkdir, remove or SQLite
    connection (observed with an audit hook in a fresh interpreter, after the store is opened)."""
    RunStore(sandbox.runs)  # an existing store: a connection would succeed, so none must be tried
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(sandbox.runs), json.dumps(bad_id)],
        capture_output=True,
        text=True,
        timeout=60,
        env=sandbox.environ(),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result == {name: ["RunNotFound", []] for name in result}, result
