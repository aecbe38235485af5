"""The Train page under a class: each session polls only when its view can change, and a finished run's charts
are built once for every session (what kept the server's event loop waiting, docs/BENCHMARKS.md)."""

from collections import Counter

from streamlit.testing.v1 import AppTest

import cnn_core.charts
from cnn_core.config import RunConfig, TrainConfig
from cnn_core.runs import RunStore
from cnn_core.runs.runner import execute_run
from tests.conftest import ROOT
from ui.charts import confusion_chart, curves_charts
from ui.live_polling import LIVE_SECONDS, OTHERS_SECONDS, poll_every


def test_a_live_view_polls_every_second_only_while_the_run_it_shows_is_active():
    assert poll_every("mine", set()) is None  # nothing active: no polling at all
    assert poll_every("mine", {"mine", "theirs"}) == LIVE_SECONDS == 1.0  # queued or training: it moves
    assert poll_every("mine", {"theirs"}) == OTHERS_SECONDS > LIVE_SECONDS  # finished: only others can change
    assert poll_every(None, {"theirs"}) == OTHERS_SECONDS


def test_a_finished_runs_charts_are_built_once_for_every_session_and_rerun(small_data, monkeypatch):
    store = RunStore()
    run_id = store.create(RunConfig(train=TrainConfig(epochs=1, device="cpu")), "mnist", name="done")
    execute_run(store, run_id, data=small_data)
    built: Counter[str] = Counter()
    for name in ("curves_charts", "confusion_chart"):
        real = getattr(cnn_core.charts, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            built[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(cnn_core.charts, name, counted)
    curves_charts.clear()
    confusion_chart.clear()
    for _ in range(2):  # two sessions, each drawing the page twice
        at = AppTest.from_file(str(ROOT / "views" / "train.py"), default_timeout=60).run()
        at.run()
        assert not at.exception
        specs = [c.proto.spec for c in at.get("vega_lite_chart")]
        assert sum('"loss"' in s or '"accuracy"' in s for s in specs) == 2 and any("confusion" in s for s in specs)
    assert built == {"curves_charts": 1, "confusion_chart": 1}
