"""AppTest: a broken run store is one ``st.error`` on the pages that need it and a warning on those that do not;
hostile fully connected sizes and the memory budget disable Launch with the reason; an emptied store is rebuilt
with one click."""

import sqlite3

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
