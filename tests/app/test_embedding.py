"""AppTest: the Embedding page projects the test set for a bundled model and plays back a run's epochs."""

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.runs import RunStore
from cnn_core.runs.runner import execute_run
from tests.conftest import ROOT


def open_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "views" / "embedding.py"), default_timeout=120).run()
    assert not at.exception
    return at


def chart_rows(at: AppTest, title_part: str):
    chart = next(c for c in at.get("vega_lite_chart") if title_part in c.proto.spec)
    return pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()


def test_a_bundled_model_shows_every_test_digit_coloured_by_class_and_how_far_apart_they_are():
    at = open_page()
    rows = chart_rows(at, "component 1")
    assert len(rows) == 1000 and sorted(rows["class"].unique()) == [str(d) for d in range(10)]
    apart = next(m for m in at.metric if m.label == "Classes apart")
    assert float(apart.value) > 5 and "from untrained" in apart.delta  # measured 15.7 against 0.9
    assert not at.slider  # one checkpoint: nothing to play back
    assert any(c.value == "1,000 of 1,000 test images." for c in at.caption)
    assert any("Click a dot" in c.value for c in at.caption)


@pytest.mark.slow
def test_a_runs_epochs_play_back_with_a_separation_score_per_epoch(small_data):
    store = RunStore()
    config = RunConfig(train=TrainConfig(epochs=3, batch_size=64, device="cpu"))
    run_id = store.create(config, dataset="mnist", name="three epochs")
    execute_run(store, run_id, data=small_data)
    at = open_page()
    at.selectbox(key="embedding.model").set_value(f"run: three epochs ({run_id})").run()
    slider = at.slider(key="embedding.epoch")
    assert (slider.min, slider.max, slider.value) == (1, 3, 3)
    scores = chart_rows(at, "between / within class spread")
    assert list(scores["epoch"]) == [1, 2, 3]
    last = next(m for m in at.metric if m.label == "Classes apart").value
    slider.set_value(1).run()
    assert not at.exception
    assert next(m for m in at.metric if m.label == "Classes apart").value != last
    assert '"epoch 1 of 3"' in next(c for c in at.get("vega_lite_chart") if "component 1" in c.proto.spec).proto.spec
    at.button(key="embedding.play").click().run()  # from epoch 1: plays on
    assert at.session_state["embedding.playing"] and at.button(key="embedding.play").label == "⏸ Pause"


@pytest.mark.slow
def test_another_model_starts_on_its_last_epoch_with_no_dot_chosen(small_data):
    store = RunStore()
    ids = []
    for name in ("first", "second"):
        run_id = store.create(RunConfig(train=TrainConfig(epochs=3, batch_size=64, device="cpu")), "mnist", name=name)
        execute_run(store, run_id, data=small_data)
        ids.append(run_id)
    at = open_page()
    at.selectbox(key="embedding.model").set_value(f"run: first ({ids[0]})").run()
    at.slider(key="embedding.epoch").set_value(1).run()
    at.session_state["embedding.chart"] = {"selection": {"point": [{"index": 7}]}}  # a clicked dot
    at.run()
    assert any(i.captions == ["test image #7 · " + i.captions[0].rsplit(" · ", 1)[1]] for i in at.get("image"))
    at.selectbox(key="embedding.model").set_value(f"run: second ({ids[1]})").run()
    assert at.slider(key="embedding.epoch").value == 3  # its last epoch, not the first run's epoch 1
    assert any("Click a dot" in c.value for c in at.caption)  # the dot was the other model's
