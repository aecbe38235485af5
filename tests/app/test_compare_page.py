"""AppTest: the Compare page on an empty store, a launched max-vs-avg pair, run comparison and management."""

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.runs import RunStore
from cnn_core.runs.runner import execute_run
from tests.conftest import ROOT
from tests.polling import wait_until

PAGE = str(ROOT / "views" / "compare.py")


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def test_empty_store_renders_with_launch_enabled():
    at = _page()
    assert not at.exception
    assert not at.button(key="compare.launch").disabled
    assert any("No runs yet" in i.value for i in at.info)


@pytest.mark.slow
def test_max_vs_avg_launches_pairs_that_differ_only_in_pooling_and_shows_a_verdict():
    at = _page()
    at.slider(key="compare.seeds").set_value(1).run()
    at.number_input(key="compare.epochs").set_value(1).run()
    at.button(key="compare.launch").click().run()
    store = RunStore()
    runs = store.list()
    assert sorted(r.name for r in runs) == ["avg-seed0", "max-seed0"]
    a, b = (r.config for r in runs)
    assert a.train == b.train and a.model.with_pooling("max") == b.model.with_pooling("max")
    wait_until(lambda: all(r.finished for r in store.list()), 180, "both runs' end", interval=0.5)
    at.run()
    verdict = at.info[0].value
    assert "pooling is ahead by" in verdict and "one seed" in verdict
    assert {m.label for m in at.metric} == {"max pooling: test accuracy", "avg pooling: test accuracy"}


def _finished_run(small_data, **train) -> str:
    store = RunStore()
    run_id = store.create(RunConfig(train=TrainConfig(epochs=1, device="cpu", **train)), dataset="mnist")
    execute_run(store, run_id, data=small_data)
    return run_id


def test_comparing_runs_lists_only_the_hyperparameters_that_differ(small_data):
    first, second = _finished_run(small_data, lr=1e-3), _finished_run(small_data, lr=3e-3)
    at = _page()
    next(m for m in at.multiselect if m.label == "runs").set_value([first, second]).run()
    assert not at.exception
    diff = at.dataframe[-1].value
    assert list(diff["hyperparameter"]) == ["train.lr"]
    summary = at.dataframe[0].value
    assert set(summary["metric"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_rename_and_delete_with_confirmation(small_data):
    run_id = _finished_run(small_data)
    at = _page()
    at.text_input(key=f"compare.rename.{run_id}").set_value("my best run").run()
    at.button(key="compare.rename").click().run()
    assert RunStore().get(run_id).name == "my best run"
    assert at.button(key="compare.delete").disabled
    sure = at.checkbox(key=f"compare.sure.{run_id}")
    assert sure.label == "yes, delete “my best run” and its checkpoints"  # says which run goes
    sure.check().run()
    at.button(key="compare.delete").click().run()
    assert RunStore().list() == []
    assert [s.value for s in at.success] == [f"Deleted “my best run” ({run_id}) and its checkpoints."]


def test_rename_refuses_a_name_another_run_has_and_says_so(small_data):
    first, second = _finished_run(small_data), _finished_run(small_data)
    RunStore().rename(first, "baseline")
    at = _page()
    next(s for s in at.selectbox if s.label == "run").set_value(second).run()
    at.text_input(key=f"compare.rename.{second}").set_value("baseline").run()
    at.button(key="compare.rename").click().run()
    assert RunStore().get(second).name != "baseline"
    assert any(e.value.startswith("another run is already called “baseline”") for e in at.error)


@pytest.mark.slow
def test_invariance_of_the_bundled_pair_is_measured_on_demand_and_then_kept():
    at = _page()
    assert at.radio(key="compare.invariance.what").value == "the bundled max and avg models"  # no comparison yet
    at.button(key="compare.invariance.measure").click().run(timeout=180)
    assert not at.exception
    charts = [c for c in at.get("vega_lite_chart") if "test accuracy" in c.proto.spec]
    assert len(charts) == 3  # shift, rotation, scale
    summary = next(i.value for i in at.info if i.value.startswith("Shift"))
    assert summary.startswith("Shift 4 px: max ") and ", avg " in summary and "Rotation 30°" in summary
    again = _page()  # another session: measured once for the whole app, shown without a click
    assert len([c for c in again.get("vega_lite_chart") if "test accuracy" in c.proto.spec]) == 3


def _comparison_group(group: str = "pool-20261202-120000") -> None:
    """A max-vs-avg pair as Compare groups it (failed at once: nothing trains)."""
    store = RunStore()
    for pool in ("max", "avg"):
        run_id = store.create(RunConfig(), dataset="mnist", name=f"{pool}-seed0", group_id=group, claim=True)
        store.fail(run_id, "stopped by the test")


def test_invariance_measures_the_new_comparison_once_there_is_one():
    at = _page()
    assert at.radio(key="compare.invariance.what").value == "the bundled max and avg models"
    _comparison_group()
    at.run()
    assert at.radio(key="compare.invariance.what").value == "the comparison above"
