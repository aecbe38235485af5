"""AppTest: a broken run store is one ``st.error`` on the pages that need it and a warning on those that do not;
hostile fully connected sizes and the memory budget disable Launch with the reason; an emptied store is rebuilt
with one click."""

import os
import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.runs import RunStore
from tests.conftest import ROOT
from tests.reliability.conftest import copy_store

NOT_A_STORE = "not a CNN Lab run store"
NEEDS_STORE = ["train", "compare"]
BUNDLED_MODELS = ["explain", "filters"]


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "views" / f"{name}.py"), default_timeout=120)
    if name == "explain":
        at.session_state["explain.faithfulness"] = False  # scoring is slow and not what these tests look at
    return at.run()


@pytest.fixture
def garbage_store(tmp_path, monkeypatch):
    runs = tmp_path / "garbage-runs"
    runs.mkdir()
    (runs / "runs.db").write_bytes(b"\x00garbage, not SQLite\n" * 50)
    monkeypatch.setenv("CNN_LAB_RUNS", str(runs))
    return runs


@pytest.mark.parametrize("page", NEEDS_STORE)
def test_a_page_that_needs_the_store_shows_one_error_when_it_is_garbage(garbage_store, page):
    before = (garbage_store / "runs.db").read_bytes()
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error if NOT_A_STORE in e.value] == [
        f"{garbage_store / 'runs.db'} is {NOT_A_STORE} (not an SQLite database); move it away or set CNN_LAB_RUNS"
    ]
    assert (garbage_store / "runs.db").read_bytes() == before


@pytest.mark.parametrize("page", BUNDLED_MODELS)
def test_a_page_with_bundled_models_still_renders_when_the_store_is_garbage(garbage_store, page):
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(NOT_A_STORE in w.value for w in at.warning)
    assert at.selectbox(key=f"{page}.model").options[0].startswith("lenet5-mnist")


@pytest.fixture
def newer_store(tmp_path, monkeypatch, finished_store):
    runs = copy_store(finished_store, tmp_path / "newer-runs")
    con = sqlite3.connect(runs / "runs.db")
    con.execute("ALTER TABLE runs ADD COLUMN tags TEXT")
    con.commit()
    con.close()
    monkeypatch.setenv("CNN_LAB_RUNS", str(runs))
    return runs


@pytest.mark.parametrize("page", ["train", "explain"])
def test_a_store_from_a_newer_version_is_not_an_exception_on_any_page(newer_store, page):
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]


def test_huge_fully_connected_sizes_are_an_error_and_launch_is_disabled():
    at = open_page("train")
    assert not at.button(key="train.launch").disabled
    for text in ("99999999999999999999999", "100000000"):
        at.text_input(key="train.fc").set_value(text).run()
        assert not at.exception
        assert at.button(key="train.launch").disabled
        assert f"fc1.width: expected an integer from 1 to 65,536, got {text}" in [e.value for e in at.error]
    at.text_input(key="train.fc").set_value("65536, 65536, 65536").run()  # valid sizes, 128 GB of weights
    assert at.button(key="train.launch").disabled
    assert any(e.value.startswith("this run needs about ") and "CNN_LAB_MAX_MEMORY_MB" in e.value for e in at.error)
    at.text_input(key="train.fc").set_value("84").run()
    assert not at.button(key="train.launch").disabled and not at.error


def test_the_memory_budget_disables_launch_with_the_reason(monkeypatch):
    monkeypatch.setenv("CNN_LAB_MAX_MEMORY_MB", "1")
    at = open_page("train")
    assert not at.exception
    assert at.button(key="train.launch").disabled
    (error,) = at.error
    assert error.value.startswith("this run needs about ")
    assert "the limit is 1 MB (set CNN_LAB_MAX_MEMORY_MB to change it)" in error.value


def test_a_bad_memory_limit_is_an_error_on_the_train_page_not_an_exception(monkeypatch):
    monkeypatch.setenv("CNN_LAB_MAX_MEMORY_MB", "lots")
    at = open_page("train")
    assert not at.exception, [e.value for e in at.exception]
    assert at.button(key="train.launch").disabled
    assert any("CNN_LAB_MAX_MEMORY_MB" in e.value for e in at.error)


def test_an_emptied_store_is_refused_then_rebuilt_with_one_click(tmp_path, monkeypatch, finished_store):
    runs = copy_store(finished_store, tmp_path / "emptied-runs")
    (runs / "runs.db").write_bytes(b"")
    monkeypatch.setenv("CNN_LAB_RUNS", str(runs))
    at = open_page("train")
    assert not at.exception
    assert "3 run folder(s) are beside it" in at.error[0].value
    assert (runs / "runs.db").read_bytes() == b""  # opening the page did not replace it
    rebuild = next(b for b in at.button if b.label == "Rebuild the run store from its folders")
    rebuild.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("run folder(s) are beside it" in e.value for e in at.error)
    assert sorted(r.name for r in RunStore(runs).list()) == ["alpha", "beta", "gamma"]


def alpha_of(runs):
    return next(r for r in RunStore(runs).list() if r.name == "alpha")


@pytest.fixture
def truncated_store(tmp_path, monkeypatch, finished_store):
    """The finished store with alpha's model cut in half (a disk that filled, a copy that stopped)."""
    runs = copy_store(finished_store, tmp_path / "truncated-runs")
    model = Path(alpha_of(runs).checkpoint)
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    monkeypatch.setenv("CNN_LAB_RUNS", str(runs))
    return runs


def pick_alpha(at: AppTest, page: str, runs) -> AppTest:
    key = f"{page}.model"
    label = next(o for o in at.selectbox(key=key).options if alpha_of(runs).id in o)
    return at.selectbox(key=key).set_value(label).run()


@pytest.mark.parametrize("page", BUNDLED_MODELS)
def test_a_truncated_run_checkpoint_is_one_error_and_the_picker_stays(truncated_store, page):
    at = pick_alpha(open_page(page), page, truncated_store)
    assert not at.exception, [e.value for e in at.exception]
    [error] = at.error
    assert "model.safetensors" in error.value
    at.selectbox(key=f"{page}.model").set_value("lenet5-mnist-max").run()  # another model: the page works again
    assert not at.exception and not at.error


@pytest.fixture
def unhashed_store(tmp_path, monkeypatch, finished_store):
    """The finished store with alpha's model saved again without its SHA-256 (an old or hand-made file)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from cnn_core.model.checkpoint import HASH_KEY

    runs = copy_store(finished_store, tmp_path / "unhashed-runs")
    model = alpha_of(runs).checkpoint
    with safe_open(model, "pt") as fh:
        metadata = {k: v for k, v in fh.metadata().items() if k != HASH_KEY}
    save_file(load_file(model), model, metadata=metadata)
    monkeypatch.setenv("CNN_LAB_RUNS", str(runs))
    return runs


def badges(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "badge[" in m.value]


@pytest.mark.parametrize("page", BUNDLED_MODELS)
def test_a_checkpoint_without_a_hash_is_shown_unverified_and_the_bundled_ones_are_not(unhashed_store, page):
    at = open_page(page)
    if page == "filters":
        at.selectbox(key="filters.model").set_value("lenet5-mnist-max").run()
    assert not at.exception and badges(at) == []
    at = pick_alpha(at, page, unhashed_store)
    assert not at.exception, [e.value for e in at.exception]
    assert [b for b in badges(at) if "unverified" in b]


def test_a_sweep_asking_for_more_cpus_than_the_machine_has_is_refused_on_the_page():
    """It used to be queued, and its driver then waited for CPUs that never come, without a word."""
    at = AppTest.from_file(str(ROOT / "views" / "sweep.py"), default_timeout=60).run()
    next(b for b in at.button if b.label.startswith("🧪 Preset")).click().run()
    at.number_input(key="sweep.form.cpu").set_value(64.0).run()
    at.button(key="sweep.launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"each trial asks for 64 CPU(s) but this machine has {os.cpu_count()}" in e.value for e in at.error)
    assert RunStore().sweeps.list() == []
