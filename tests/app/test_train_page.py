"""AppTest: the Train page shows shapes before training, refuses invalid configs and launches runs."""

import time

from streamlit.testing.v1 import AppTest

from cnn_core.runs import RunStore
from tests.conftest import ROOT

PAGE = str(ROOT / "views" / "train.py")


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def test_empty_store_shows_lenet5_shapes_and_formulas():
    at = _page()
    assert not at.exception
    formulas = [m.value for m in at.markdown if m.value.startswith("`conv")]
    assert formulas[0] == "`conv1`: (28 − 5 + 2·2) / 1 + 1 = 28 ✅"
    assert at.metric[0].value == "61,706"
    assert any("No runs yet" in i.value for i in at.info)
    assert not at.button(key="train.launch").disabled


def test_stride_that_does_not_fit_is_flagged_before_training():
    at = _page()
    at.slider(key="train.blocks").set_value(2).run()
    at.slider(key="train.conv2.stride").set_value(2).run()
    line = next(m.value for m in at.markdown if m.value.startswith("`conv2`"))
    assert "5.50 → 5 (floored)" in line and "drops the last 1 row(s)/column(s)" in line


def test_invalid_config_disables_launch_and_says_why():
    at = _page()
    at.slider(key="train.conv1.stride").set_value(2).run()
    assert at.button(key="train.launch").disabled
    assert at.error[0].value.startswith("conv3: filter 5×5 is larger than its 1×1 (padded) input")
    at.text_input(key="train.fc").set_value("84, lots").run()
    assert "whole numbers" in at.error[0].value


def test_launch_registers_a_run_that_the_page_then_shows_finished():
    at = _page()
    at.slider(key="train.epochs").set_value(1).run()
    at.text_input(key="train.name").set_value("apptest-run").run()
    at.button(key="train.launch").click().run()
    run_id = at.session_state["train.pick"]
    store = RunStore()
    assert store.get(run_id).name == "apptest-run"
    deadline = time.time() + 120
    while store.get(run_id).status in ("queued", "running") and time.time() < deadline:
        time.sleep(0.5)
    assert store.get(run_id).status == "completed"
    at.run()
    labels = {m.label: m.value for m in at.metric}
    assert labels["test accuracy"].endswith("%")
    assert [b.label for b in at.get("download_button")] == [
        "SVG",  # the curves chart
        "checkpoint (.safetensors)",
        "config (.json)",
        "metrics (.csv)",
    ]


def test_stop_button_stops_a_running_run_and_keeps_its_epochs():
    at = _page()
    at.slider(key="train.epochs").set_value(100).run()
    at.button(key="train.launch").click().run()
    run_id = at.session_state["train.pick"]
    store = RunStore()
    deadline = time.time() + 120
    while store.get(run_id).epochs_done < 1 and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    at.button(key=f"train.stop.{run_id}").click().run()
    while store.get(run_id).status == "running" and time.time() < deadline:
        time.sleep(0.2)
    row = store.get(run_id)
    assert row.status == "stopped" and 1 <= row.epochs_done < 100
    assert len(store.epoch_checkpoints(run_id)) == row.epochs_done


def test_settings_survive_a_visit_to_another_page_and_back():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("views/train.py").run()
    at.slider(key="train.epochs").set_value(3).run()
    at.slider(key="train.blocks").set_value(2).run()
    at.slider(key="train.conv2.stride").set_value(2).run()
    at.text_input(key="train.fc").set_value("120, 84").run()
    at.switch_page("views/compare.py").run()
    assert "train.epochs" not in at.session_state  # Streamlit dropped the widget's own state meanwhile
    at.switch_page("views/train.py").run()
    assert not at.exception
    assert at.slider(key="train.epochs").value == 3 and at.slider(key="train.blocks").value == 2
    assert at.slider(key="train.conv2.stride").value == 2 and at.text_input(key="train.fc").value == "120, 84"


def test_the_cost_estimate_sits_beside_the_parameter_count_and_an_over_budget_run_cannot_launch(monkeypatch):
    at = _page()
    assert at.metric[2].label == "memory · disk" and " MB · " in at.metric[2].value
    monkeypatch.setenv("CNN_LAB_MAX_MEMORY_MB", "1")
    at.run()
    assert at.button(key="train.launch").disabled
    assert at.error[0].value.startswith("this run needs about") and "CNN_LAB_MAX_MEMORY_MB" in at.error[0].value


def test_an_app_missing_a_page_file_says_so_instead_of_dropping_it(tmp_path):
    (tmp_path / "app.py").write_text((ROOT / "app.py").read_text())  # beside it: no views/ at all
    at = AppTest.from_file(str(tmp_path / "app.py"), default_timeout=60).run()
    assert "missing its page file(s): views/home.py" in at.exception[0].message
