"""AppTest: the app opens on the home page with the device and the bundled models."""

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def test_home_page_shows_device_and_bundled_checkpoints():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value.endswith("CNN Lab")
    assert at.metric[0].label == "Training device" and at.metric[0].value in ("CPU", "GPU", "MPS")
    names = list(at.dataframe[0].value["name"])
    assert names == ["lenet5-mnist-max", "lenet5-mnist-avg"]
    assert (at.dataframe[0].value["test_accuracy"] > 0.97).all()
