"""AppTest: the app opens on Home: the pages as a path, your recent runs, the device and the bundled models."""

import pandas as pd
from streamlit.testing.v1 import AppTest

from cnn_core.config import RunConfig
from cnn_core.runs import RunStore, Status
from tests.conftest import ROOT

STEPS = ["Concepts", "Data", "Train", "Compare", "Sweep", "Filters & feature maps", "Embedding", "Explain"]


def home() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    return at


def recent_runs(at: AppTest) -> pd.DataFrame:
    frames = [df.value for df in at.dataframe if "status" in df.value.columns]
    assert len(frames) == 1, [list(df.value.columns) for df in at.dataframe]
    return frames[0]


def bundled(at: AppTest) -> pd.DataFrame:
    return next(df.value for df in at.dataframe if "name" in df.value.columns)


def test_home_page_shows_device_and_bundled_checkpoints():
    at = home()
    assert at.title[0].value.endswith("CNN Lab")
    assert at.metric[0].label == "Training device" and at.metric[0].value in ("CPU", "GPU", "MPS")
    names = list(bundled(at)["name"])
    assert names == ["lenet5-mnist-max", "lenet5-mnist-avg"]
    assert (bundled(at)["test_accuracy"] > 0.97).all()


def test_home_shows_every_page_as_a_step_in_order_each_a_link_with_one_line_above_the_rest():
    at = home()
    links = at.get("page_link")[: len(STEPS)]
    assert [link.value for link in links] == STEPS  # titles as app.py declares them
    pages = ["concepts", "data", "train", "compare", "sweep", "filters", "embedding", "explain"]
    assert [link.proto.page for link in links] == pages  # none skipped (Data, Sweep and Embedding were)
    assert len(at.caption) >= len(STEPS) and all(c.value for c in at.caption[: len(STEPS)])
    headings = [h.value for h in at.subheader]
    assert headings.index("Where to start") < headings.index("Bundled models")


def test_with_no_runs_home_invites_a_first_run_on_train():
    at = home()
    invite = at.get("page_link")[len(STEPS)]
    assert invite.value.startswith("No runs yet") and invite.proto.page == "train"
    assert not [df for df in at.dataframe if "status" in df.value.columns]


def test_a_run_created_in_the_store_appears_in_recent_runs_with_its_status():
    store = RunStore()
    store.create(RunConfig(), "mnist", name="my first")
    at = home()
    runs = recent_runs(at)
    assert list(runs["run"]) == ["my first"] and list(runs["status"]) == ["queued"]
    assert list(runs["test accuracy"]) == ["—"]  # not finished: no accuracy yet
    assert at.get("page_link")[len(STEPS)].proto.page == "train"


def test_recent_runs_are_the_five_newest_and_a_finished_one_shows_its_accuracy():
    store = RunStore()
    ids = [store.create(RunConfig(), "mnist", name=f"run {i}") for i in range(7)]
    assert store.claim(ids[-1])
    store.finish(ids[-1], Status.COMPLETED, epochs_done=40, test_accuracy=0.987)
    runs = recent_runs(home())
    assert list(runs["run"]) == [f"run {i}" for i in (6, 5, 4, 3, 2)]  # newest first
    assert runs["status"].iloc[0] == "completed" and runs["test accuracy"].iloc[0] == "98.70%"
    assert runs["epochs"].iloc[0] == "40 / 40"


def test_a_run_name_with_control_characters_is_shown_escaped():
    RunStore().create(RunConfig(), "mnist", name="evil\x1b[31m")
    assert list(recent_runs(home())["run"]) == ["evil\\x1b[31m"]


def test_a_broken_run_store_is_one_warning_and_the_rest_of_home_still_works(private_runs_dir):
    private_runs_dir.mkdir(parents=True, exist_ok=True)
    (private_runs_dir / "runs.db").write_bytes(b"this is not a database at all")
    at = home()
    assert [w.value for w in at.warning if w.value.startswith("Your runs cannot be shown")]
    assert [link.value for link in at.get("page_link")] == STEPS
    assert list(bundled(at)["name"]) == ["lenet5-mnist-max", "lenet5-mnist-avg"]


def test_the_bundled_models_come_with_what_their_measured_comparison_shows():
    at = home()
    said = next(c.value for c in at.caption if c.value.startswith("Measured:"))
    assert "average pooling is ahead by 0.80 points" in said and "max pooling is ahead by 0.10 points" in said
    assert "one model trained once" in said and "max usually wins" in said
