"""AppTest: the Train page shows shapes before training, refuses invalid configs and launches runs."""

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.runs import RunStore, Status
from cnn_core.runs.runner import execute_run
from tests.conftest import ROOT
from tests.polling import wait_until

PAGE = str(ROOT / "views" / "train.py")


def _picker(at: AppTest):
    """The run picker (its widget key carries a fingerprint of its labels: find it by its label)."""
    return next(s for s in at.selectbox if s.label == "run")


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


@pytest.mark.slow
def test_launch_registers_a_run_that_the_page_then_shows_finished():
    at = _page()
    at.slider(key="train.epochs").set_value(1).run()
    at.text_input(key="train.name").set_value("apptest-run").run()
    at.button(key="train.launch").click().run()
    run_id = at.session_state["train.pick"]
    store = RunStore()
    assert store.get(run_id).name == "apptest-run"
    wait_until(lambda: store.get(run_id).finished, 120, "the run's end", interval=0.5)
    assert store.get(run_id).status == "completed"
    at.run()
    labels = {m.label: m.value for m in at.metric}
    assert labels["test accuracy"].endswith("%")
    assert [b.label for b in at.get("download_button")] == [
        "train_cnn.py",  # Show the code
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
    wait_until(lambda: store.get(run_id).epochs_done >= 1, 120, "the first epoch")
    at.run()
    at.button(key=f"train.stop.{run_id}").click().run()
    wait_until(lambda: store.get(run_id).status != "running", 120, "the stop")
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
    labels = [m.label for m in at.metric]
    assert labels == ["parameters", "multiply-adds per image", "training memory", "disk"]  # two to a row
    assert at.metric[2].value.endswith(" MB") and at.metric[3].value.endswith(" MB")
    monkeypatch.setenv("CNN_LAB_MAX_MEMORY_MB", "1")
    at.run()
    assert at.button(key="train.launch").disabled
    assert at.error[0].value.startswith("this run needs about") and "CNN_LAB_MAX_MEMORY_MB" in at.error[0].value


def test_an_app_missing_a_page_file_says_so_instead_of_dropping_it(tmp_path):
    (tmp_path / "app.py").write_text((ROOT / "app.py").read_text())  # beside it: no views/ at all
    at = AppTest.from_file(str(tmp_path / "app.py"), default_timeout=60).run()
    assert "missing its page file(s): views/home.py" in at.exception[0].message


def _finished(small_data, name: str, **train) -> str:
    store = RunStore()
    run_id = store.create(RunConfig(train=TrainConfig(epochs=1, device="cpu", **train)), "mnist", name=name)
    execute_run(store, run_id, data=small_data)
    return run_id


def test_the_run_picker_follows_a_status_change_and_stays_on_its_run(small_data):
    store = RunStore()
    # claimed as the CLI does, so the page's job manager leaves it alone
    picked = store.create(RunConfig(train=TrainConfig(epochs=1, device="cpu")), "mnist", name="picked", claim=True)
    newest = _finished(small_data, "newest")  # first in the list: where a lost selection falls back to
    at = _page()
    _picker(at).set_value(picked).run()
    assert _picker(at).format_func(picked).endswith("· running")
    store.finish(picked, Status.COMPLETED, epochs_done=1, test_accuracy=0.5)
    at.run()  # what the live fragment triggers when the set of active runs changes
    picker = _picker(at)
    assert picker.value == picked != newest
    assert picker.format_func(picked).endswith("· completed · 50.00%")


def test_launch_shows_the_new_run_by_name_and_clears_the_name_field():
    at = _page()
    at.text_input(key="train.name").set_value("my first run").run()
    at.button(key="train.launch").click().run()
    assert at.success[0].value == "Queued **my first run**: it is shown below."
    assert at.text_input(key="train.name").value == ""
    assert _picker(at).format_func(_picker(at).value).startswith("my first run")
    manager_stop_all()


def manager_stop_all() -> None:
    store = RunStore()
    for run in store.list():
        store.request_stop(run.id)


def test_one_impossible_layer_keeps_the_table_up_to_it_and_names_the_change_that_caused_it():
    at = _page()
    at.slider(key="train.conv1.kernel").set_value(3).run()  # still valid: remembered as the last valid config
    at.slider(key="train.conv1.stride").set_value(2).run()
    table = at.table[0].value
    assert list(table["layer"]) == ["conv1", "pool1", "conv2", "pool2", "conv3"]
    assert table["type"].iloc[-1] == "⛔" and table["stride fits"].iloc[0] == "NO"  # conv1's own flag stays
    assert at.error[0].value.startswith("conv3: filter 5×5 is larger than its 1×1 (padded) input")
    assert at.warning[0].value == "Made impossible by your change: conv1 stride 1 → 2"
    assert at.button(key="train.launch").disabled


def test_a_dataset_that_is_not_here_is_marked_and_cannot_be_launched():
    at = _page()
    picker = at.selectbox(key="train.dataset")
    assert (
        picker.format_func("kmnist") == "kmnist (not on this machine)"
        and picker.format_func("mnist") == "mnist · 10 classes · 28×28 grey"
    )
    picker.set_value("kmnist").run()
    assert at.button(key="train.launch").disabled
    assert "kmnist is not on this machine: download it once while online" in at.error[0].value


def test_a_stopped_run_says_where_it_stopped_and_offers_the_checkpoint_it_kept(small_data):
    store = RunStore()
    run_id = store.create(RunConfig(train=TrainConfig(epochs=5, device="cpu")), "mnist", name="cut short")
    execute_run(store, run_id, data=small_data, on_event=lambda e: e.kind == "epoch" and store.request_stop(run_id))
    assert store.get(run_id).status == "stopped"
    stopped_at = store.get(run_id).epochs_done
    interrupted = store.create(RunConfig(train=TrainConfig(epochs=5, device="cpu")), "mnist", name="killed", claim=True)
    store.interrupt(interrupted, "the worker was killed")
    at = _page()
    _picker(at).set_value(run_id).run()
    assert any(c.value.startswith(f"stopped at epoch {stopped_at}/5") for c in at.caption)
    _picker(at).set_value(interrupted).run()
    assert any(c.value.startswith("interrupted at epoch 0/5") for c in at.caption)
    _picker(at).set_value(run_id).run()
    labels = [b.label for b in at.get("download_button")]
    assert "checkpoint (.safetensors)" in labels  # a stopped run is evaluated and saved


def test_the_most_confident_mistakes_come_first_and_open_in_explain(small_data):
    run_id = _finished(small_data, "mistakes")
    at = _page()
    assert not at.exception
    buttons = [b for b in at.button if b.key and b.key.startswith(f"train.explain.{run_id}.")]
    assert buttons, "the gallery shows mistakes with an Explain button"
    index = int(buttons[0].key.rsplit(".", 1)[1])
    buttons[0].click().run()
    assert at.session_state["explain.index"] == index and at.session_state["explain.input"] == "Test digit"
    assert at.session_state["explain.model"] == f"run: mistakes ({run_id})"


def test_show_the_code_follows_the_config_and_offers_the_script():
    at = _page()
    assert not at.exception
    assert at.expander[0].label == "Show the code" or any(e.label == "Show the code" for e in at.expander)
    code = [c.value for c in at.code]
    assert code[0].startswith("from safetensors.torch import load_file") and code[0].count("\n") == 2
    assert '("pool1", nn.MaxPool2d(2, stride=2)),' in code[1]
    at.slider(key="train.conv1.stride").set_value(2).run()  # a network that cannot be built has no code
    assert not at.code and any("no code for a network" in i.value for i in at.info)


def test_same_padding_with_stride_2_is_the_impossible_layer_and_the_table_stays():
    for blocks, before in ((3, ["conv1", "pool1"]), (2, ["conv1", "pool1"])):
        at = _page()
        at.slider(key="train.blocks").set_value(blocks).run()
        at.selectbox(key="train.conv2.padmode").set_value("same").run()
        at.slider(key="train.conv2.stride").set_value(2).run()
        table = at.table[0].value
        assert list(table["layer"]) == [*before, "conv2"] and table["type"].iloc[-1] == "⛔"
        assert at.error[0].value.startswith("conv2: 'same' padding needs stride 1")
        assert at.button(key="train.launch").disabled


def test_an_impossible_first_layer_still_shows_the_table_with_its_row():
    at = _page()
    at.selectbox(key="train.conv1.padmode").set_value("same").run()
    at.slider(key="train.conv1.stride").set_value(2).run()
    table = at.table[0].value
    assert list(table["layer"]) == ["conv1"] and "output (C×H×W)" in table.columns
    assert at.error[0].value.startswith("conv1: 'same' padding needs stride 1")


def test_the_run_name_survives_a_visit_to_another_page_and_back():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("views/train.py").run()
    at.text_input(key="train.name").set_value("wide filters").run()
    at.switch_page("views/compare.py").run()
    at.switch_page("views/train.py").run()
    assert at.text_input(key="train.name").value == "wide filters"


def test_the_layer_table_with_an_impossible_row_converts_to_arrow_as_streamlit_sends_it():
    """A blank in a column of numbers made Arrow refuse the column: a traceback in the server log each time."""
    import pyarrow as pa

    from cnn_core.config import ModelConfig
    from cnn_core.shapes import layer_table
    from ui.layer_preview import layer_frame

    frame = layer_frame(layer_table(ModelConfig())[:3], impossible="conv2")
    assert pa.Table.from_pandas(frame).num_rows == 4
