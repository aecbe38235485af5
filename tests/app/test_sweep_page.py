"""AppTest: the Sweep page counts trials (and names the invalid ones) before launch, and draws a finished
sweep's results with links to its best trial."""

from streamlit.testing.v1 import AppTest

from cnn_core.config.sweep import SweepConfig
from cnn_core.runs import RunStore, SweepStatus
from tests.conftest import ROOT
from tests.sweeps import finished_sweep

PAGE = str(ROOT / "views" / "sweep.py")


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _count_line(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "trials**" in m.value)


def test_a_first_visit_says_what_to_do_first_without_an_error_and_cannot_launch():
    at = _page()
    assert not at.exception
    assert not at.error
    assert any(i.value.startswith("Pick the parameters to vary") for i in at.info)
    assert at.button(key="sweep.launch").disabled


def test_parameters_are_named_as_the_train_page_names_them():
    at = _page()
    vary = at.multiselect(key="sweep.form.vary")
    assert [vary.format_func(p) for p in vary.options[:2]] == ["pooling (every block)", "conv1 filter size"]
    next(b for b in at.button if b.label.startswith("🧪 Preset")).click().run()
    at.toggle(key="sweep.form.same_pad").set_value(False).run()
    assert list(at.dataframe[0].value.columns) == ["pooling (every block)", "conv1 filter size", "reason"]


def test_the_article_preset_counts_its_trials_and_names_the_invalid_ones():
    at = _page()
    next(b for b in at.button if b.label.startswith("🧪 Preset")).click().run()
    assert not at.exception
    assert at.multiselect(key="sweep.form.vary").value == ["model.conv.*.pool", "model.conv.0.kernel_size"]
    assert _count_line(at).startswith("**18 trials** (3 seed(s) each)")  # max/avg × 3/5/7 × 3 seeds
    assert not at.button(key="sweep.launch").disabled
    at.toggle(key="sweep.form.same_pad").set_value(False).run()  # LeNet's own padding: filter 7 breaks conv3
    line = _count_line(at)
    assert line.startswith("**12 trials**") and "2 invalid configuration(s) skipped" in line
    reasons = at.dataframe[0].value["reason"].tolist()
    assert len(reasons) == 2 and all(r.startswith("conv3: filter 5×5 is larger") for r in reasons)


def test_changing_values_and_seeds_updates_the_count():
    at = _page()
    at.multiselect(key="sweep.form.vary").set_value(["train.lr"]).run()
    at.text_input(key="sweep.form.values.train.lr").set_value("0.001, 0.003, 0.01").run()
    at.number_input(key="sweep.form.seeds").set_value(2).run()
    assert _count_line(at).startswith("**6 trials**")
    at.text_input(key="sweep.form.values.train.lr").set_value("0.001, 99").run()  # lr above 10: a config rule
    assert _count_line(at).startswith("**2 trials**") and "1 invalid configuration(s)" in _count_line(at)
    assert at.dataframe[0].value["reason"].tolist() == ["train.lr: expected a number in (0, 10], got 99"]


def test_a_finished_sweep_shows_its_charts_and_its_best_trial():
    store = RunStore()
    spec = {"space": {"model.conv.*.pool": {"grid": ["max", "avg"]}}, "seeds": [0, 1], "name": "pool"}
    sweep_id = finished_sweep(
        store, spec, lambda i, params: 0.9 + 0.02 * (params["model.conv.*.pool"] == "max") + 0.005 * i
    )
    at = _page()
    assert not at.exception
    assert next(s for s in at.selectbox if s.label == "sweep").value == sweep_id
    assert any("Best trial" in s.value and "pooling (every block) max · seed 1" in s.value for s in at.success)
    assert len(at.get("vega_lite_chart")) == 4  # best so far, parallel coordinates, mean ± std, importance
    assert {b.label for b in at.button} >= {"Open on Compare", "Open on Filters", "Open on Explain"}


def test_the_launch_note_stays_while_its_sweep_runs_and_goes_when_it_ends():
    """The sweep's start redraws the whole page: a note shown only once was gone a second after the click."""
    store = RunStore()
    config = SweepConfig.from_dict({"space": {"model.conv.*.pool": {"grid": ["max", "avg"]}}, "name": "note"})
    sweep_id = store.sweeps.create(config, claim=True)  # running, as its driver has just claimed it
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["sweep.launched"] = ("success", "Launched: its trials appear below as they start.", sweep_id)
    at.run()
    assert not at.exception
    for _ in range(2):  # every redraw while it runs keeps it
        assert [s.value for s in at.success] == ["Launched: its trials appear below as they start."]
        at.run()
    store.sweeps.finish(sweep_id, SweepStatus.COMPLETED)
    at.run()
    assert not any(s.value.startswith("Launched") for s in at.success)
    assert "sweep.launched" not in at.session_state
    at.session_state["sweep.launched"] = ("error", "the sweep's trials exceed the memory budget", None)
    at.run()
    errors = [e.value for e in at.error]
    assert "the sweep's trials exceed the memory budget" in errors
    at.run()
    assert "the sweep's trials exceed the memory budget" not in [e.value for e in at.error]  # an error shows once
