"""The Train page under a class: each session polls only when its view can change, and a finished run's charts
are built once for every session (what kept the server's event loop waiting, docs/BENCHMARKS.md)."""

from collections import Counter

from streamlit.testing.v1 import AppTest

import cnn_core.charts
from cnn_core.config import RunConfig, TrainConfig
from cnn_core.jobs import JobManager
from cnn_core.jobs.fair import Wait
from cnn_core.runs import RunStore, Status
from cnn_core.runs.runner import execute_run
from tests.conftest import ROOT
from ui.charts import confusion_chart, curves_charts
from ui.live_polling import (
    FIRST_POINT_SECONDS,
    LIVE_SECONDS,
    OTHERS_SECONDS,
    awaits_first_point,
    poll_every,
    starting,
)


def test_a_live_view_polls_every_second_only_while_the_run_it_shows_is_active():
    assert poll_every("mine", set()) is None  # nothing active: no polling at all
    assert poll_every("mine", {"mine", "theirs"}) == LIVE_SECONDS == 1.0  # queued or training: it moves
    assert poll_every("mine", {"theirs"}) == OTHERS_SECONDS > LIVE_SECONDS  # finished: only others can change
    assert poll_every(None, {"theirs"}) == OTHERS_SECONDS


def test_a_live_view_polls_four_times_a_second_only_until_the_run_it_shows_draws_its_first_point():
    assert poll_every("mine", {"mine"}, starting=True) == FIRST_POINT_SECONDS == 0.25
    assert poll_every("mine", {"theirs"}, starting=True) == OTHERS_SECONDS  # only the run shown counts
    assert poll_every("mine", set(), starting=True) is None
    assert awaits_first_point(Status.RUNNING, has_metric=False, wait=None)  # a worker has it
    assert not awaits_first_point(Status.RUNNING, has_metric=True, wait=None)  # its point is there: once a second
    assert awaits_first_point(Status.QUEUED, False, Wait(1, 0.0))  # next, and nothing to wait for
    assert not awaits_first_point(Status.QUEUED, False, Wait(1, 60.0))  # next, behind a long run
    assert not awaits_first_point(Status.QUEUED, False, Wait(1, None))  # next, behind a run with no estimate yet
    assert not awaits_first_point(Status.QUEUED, False, Wait(2, 0.0))  # a class's queue: only the next one
    assert not awaits_first_point(Status.COMPLETED, False, None)


def test_a_launched_run_is_starting_until_its_first_metric_row_is_stored():
    manager = JobManager(RunStore(), max_concurrent=1, start_thread=False, warm=False)
    store, one_epoch = manager.store, RunConfig(train=TrainConfig(epochs=1, device="cpu"))
    first, second = store.create(one_epoch, "mnist"), store.create(one_epoch, "mnist")
    assert starting(manager, first) and not starting(manager, second)  # first in line, free slot; second in line
    assert store.claim(first)
    assert starting(manager, first)  # running, no point yet
    assert not starting(manager, second)  # next now, but behind a run whose end cannot be told yet
    store.log_metric(first, {"kind": "step", "epoch": 1, "step": 20, "total_steps": 29, "elapsed": 0.1})
    assert not starting(manager, first)
    assert starting(manager, second)  # the run ahead says it ends within a second: the next one is starting


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
