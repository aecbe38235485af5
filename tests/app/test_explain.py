"""AppTest: the Explain page predicts, shows what the model sees, draws every attribution method, scores
them, and opens a misclassified test digit; a bad upload is one line of error and the page goes on."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnn_core import explain
from cnn_core.config import ModelConfig, RunConfig, TrainConfig
from cnn_core.data import adapt_model, load_dataset, to_float
from cnn_core.data.library import add_dataset
from cnn_core.explain import faithfulness
from cnn_core.model.checkpoint import load_checkpoint
from cnn_core.runs import RunStore
from cnn_core.runs.runner import execute_run
from tests.conftest import ROOT
from tests.imagesets import CLASSES, draw_image, make_image_folder

N_METHODS = len(explain.METHODS)


@pytest.fixture
def at() -> AppTest:
    """The page with faithfulness scoring off (it is on for a user): most tests look at other parts."""
    app = AppTest.from_file(str(ROOT / "views" / "explain.py"), default_timeout=60)
    app.session_state["explain.faithfulness"] = False
    app.run()
    assert not app.exception
    return app


def paper_png(digit: np.ndarray, format: str = "PNG") -> bytes:
    """A test digit as a phone photo would give it: dark ink on white paper, 5× bigger, off-centre."""
    page = np.full((200, 180), 255, np.uint8)
    big = np.asarray(Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BILINEAR))
    page[10:150, 30:170] = big
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, format=format)
    return buffer.getvalue()


def open_buttons(at: AppTest) -> list:
    """The mistake gallery's Open buttons."""
    return [b for b in at.button if (b.key or "").startswith("explain.open.")]


def heatmap_captions(at: AppTest) -> list[str]:
    titles = tuple(m.title for m in explain.METHODS.values())
    return [c for image in at.image for c in image.captions if c.startswith(titles)]


def test_page_opens_on_a_test_digit_with_prediction_heatmaps_scores_and_mistakes(at, bundled):
    assert at.selectbox(key="explain.model").options == ["lenet5-mnist-max", "lenet5-mnist-avg"]  # empty run store
    assert at.metric[0].label == "Prediction" and at.metric[0].value == str(int(bundled.test_y[0]))
    assert len(heatmap_captions(at)) == N_METHODS
    at.toggle(key="explain.faithfulness").set_value(True).run()
    scores = at.dataframe[0].value
    assert list(scores["method"]) == [m.title for m in explain.METHODS.values()]
    assert np.isfinite(scores.drop(columns="method").to_numpy(dtype=float)).all()
    complete = [c for c in at.caption if c.value.startswith("Completeness of ")]
    assert [c.value.split(":")[0].removeprefix("Completeness of ") for c in complete] == [
        "Integrated Gradients",
        "DeepLift",
    ]
    assert all("convergence Δ = " in c.value and "convergence delta" in c.proto.help for c in complete)
    assert any("misclassified" in c.value for c in at.caption)
    assert [b.label for b in open_buttons(at)][:1] == ["Open"]


def test_uploaded_photo_shows_each_preprocessing_step_a_prediction_and_heatmaps(at, bundled):
    label = int(bundled.test_y[7])
    at.radio(key="explain.input").set_value("Upload").run()
    at.file_uploader(key="explain.upload").upload(
        "digit.png", paper_png(bundled.test_x[7, 0].numpy()), "image/png"
    ).run()
    assert not at.exception and not at.error
    captions = [c for image in at.image for c in image.captions]
    for step in ("original", "grey, inverted", "cropped", "20×20", "centred 28×28"):
        assert step in captions
    assert any(c.startswith("plain resize → ") for c in captions)
    assert at.metric[0].value == str(label)
    assert len(heatmap_captions(at)) == N_METHODS


def test_bad_upload_shows_one_line_and_the_page_still_explains_a_test_digit(at):
    at.radio(key="explain.input").set_value("Upload").run()
    at.file_uploader(key="explain.upload").upload("digit.png", b"this is text, not a PNG", "image/png").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["not an image CNN Lab can read (PNG, JPEG, WEBP, BMP, GIF, TIFF)"]
    assert not at.metric  # nothing predicted from a bad file
    at.radio(key="explain.input").set_value("Test digit").run()
    assert not at.error and at.metric[0].label == "Prediction"


def test_the_uploader_offers_every_format_the_loader_reads_tiff_included(at, bundled):
    at.radio(key="explain.input").set_value("Upload").run()
    uploader = at.file_uploader(key="explain.upload")
    assert {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"} <= set(uploader.allowed_type)
    uploader.upload("digit.tif", paper_png(bundled.test_x[7, 0].numpy(), "TIFF"), "image/tiff").run()
    assert not at.exception and not at.error
    assert at.metric[0].value == str(int(bundled.test_y[7]))


def test_draw_mode_shows_the_canvas_and_waits_for_a_drawing(at):
    """AppTest cannot draw (a real browser test does); the canvas must at least render without error."""
    at.radio(key="explain.input").set_value("Draw").run()
    assert not at.exception and not at.error
    assert any("Draw a digit" in i.value for i in at.info) and not at.metric


def test_opening_a_misclassified_digit_explains_that_digit(at, bundled):
    open_buttons(at)[0].click().run()
    index = at.session_state["explain.index"]
    assert index > 0 and at.session_state["explain.input"] == "Test digit"
    shown = at.metric[0].value
    assert shown != str(int(bundled.test_y[index]))  # it was misclassified, and the page says so
    assert f"Label: **{int(bundled.test_y[index])}**" in [c.value for c in at.caption]


def test_another_target_class_and_a_shared_scale(at):
    at.selectbox(key="explain.target").set_value("3").run()
    assert any("push towards class 3" in c.value for c in at.caption)
    at.radio(key="explain.scale").set_value("shared").run()
    scales = {c.split("scale ")[1] for c in heatmap_captions(at)}
    assert len(scales) == 1  # one scale for every method


def test_method_settings_and_a_subset_of_methods(at):
    at.multiselect(key="explain.methods").set_value(["occlusion", "layer_gradcam"]).run()
    at.slider(key="explain.occlusion.window").set_value(7).run()
    at.selectbox(key="explain.layer_gradcam.layer").set_value("act2").run()
    assert not at.exception
    assert [c.split(" (")[0] for c in heatmap_captions(at)] == ["Occlusion", "Layer Grad-CAM"]
    at.toggle(key="explain.faithfulness").set_value(True).run()
    assert list(at.dataframe[0].value["method"]) == ["Occlusion", "Layer Grad-CAM"]


def test_comparing_max_and_average_pooling_draws_both_on_the_same_scales(at):
    at.toggle(key="explain.compare").set_value(True).run()
    captions = heatmap_captions(at)
    assert len(captions) == 2 * N_METHODS
    assert captions[:N_METHODS] == captions[N_METHODS:]  # per method, one scale across both models
    assert {"**lenet5-mnist-max**", "**lenet5-mnist-avg**"} <= {m.value for m in at.markdown}


def test_an_unsure_prediction_is_flagged(at, bundled):
    model = load_checkpoint("lenet5-mnist-max").model
    with torch.no_grad():
        confidence = model.predict_proba(to_float(bundled.test_x)).max(1).values
    unsure = int(torch.nonzero(confidence < 0.6)[0])
    at.number_input(key="explain.index").set_value(unsure).run()
    assert any("The model is unsure" in w.value for w in at.warning)


def test_scores_open_with_a_plain_verdict_each_column_explained_on_hover_and_a_dash_for_no_number(at):
    at.toggle(key="explain.faithfulness").set_value(True)
    at.selectbox(key="explain.target").set_value("3").run()  # Grad-CAM finds nothing for a 3 in this 0
    verdict = [m.value for m in at.markdown if m.value.startswith("**Which map to trust here?**")]
    assert len(verdict) == 1 and "pass the sanity check" in verdict[0] and "Start with the **" in verdict[0]
    columns = json.loads(at.dataframe[0].proto.columns)
    assert {name: c["help"] for name, c in columns.items() if "help" in c} == faithfulness.SCORE_HELP
    scores = at.dataframe[0].value
    shown = scores.drop(columns="method").astype(str).to_numpy().ravel()
    assert "—" in shown and not {"None", "nan", "NaN"} & set(shown)  # a dash, not a raw "None"
    assert any("A dash: one of the two maps" in c.value for c in at.caption)
    assert "cannot be checked here" in verdict[0]


def test_with_no_method_chosen_the_page_says_so(at):
    at.multiselect(key="explain.methods").set_value([]).run()
    assert not at.exception
    assert any("No method chosen" in i.value for i in at.info)
    assert not heatmap_captions(at) and at.metric[0].label == "Prediction"  # the rest of the page stays


def test_an_opened_digit_is_shown_next_to_the_list_with_its_prediction(at, bundled):
    assert not [m for m in at.metric if m.label == "Opened: prediction"]
    open_buttons(at)[0].click().run()
    index = at.session_state["explain.index"]
    opened = [m for m in at.metric if m.label == "Opened: prediction"]
    assert len(opened) == 1 and opened[0].value == at.metric[0].value  # the same answer as at the top
    assert f"#{index}, labelled {int(bundled.test_y[index])}" in [c for i in at.image for c in i.captions]
    assert any("](#which-pixels-drove-the-answer)" in m.value for m in at.markdown)
    at.number_input(key="explain.index").set_value(0).run()  # another digit: the panel goes
    assert not [m for m in at.metric if m.label == "Opened: prediction"]


def test_the_clicked_confusion_cell_is_framed_and_its_mistakes_listed(at):
    def layers() -> list[dict]:
        return json.loads(at.get("vega_lite_chart")[-1].proto.spec)["layer"]

    plain = len(layers())
    at.session_state["explain.confusion"] = {"selection": {"cell": [{"true": "4", "predicted": "9"}]}}
    at.run()
    assert any(c.value.endswith("misclassified 4s taken for 9") for c in at.caption)
    frame = layers()[-1]
    assert len(layers()) == plain + 1 and frame["mark"]["stroke"] and frame["mark"]["fill"] is None
    data = at.get("vega_lite_chart")[-1].proto.datasets
    assert any(b"4" in d.data.data and b"9" in d.data.data for d in data)


def moved_prediction(at: AppTest) -> str:
    """The moved input's answer, how sure, and whether the answer changed."""
    return next(m.value for m in at.markdown if m.value.startswith("Moved, it answers"))


def test_moving_the_input_moves_the_prediction_and_reset_brings_it_back(at, bundled):
    assert [i for i in at.image if "moved input" in i.captions]
    unchanged = moved_prediction(at)
    assert unchanged.startswith(f"Moved, it answers **{int(bundled.test_y[0])}**") and unchanged.endswith("· unchanged")
    for key, value in (("dx", 4), ("dy", -4), ("angle", 30), ("scale", 0.7), ("thickness", -2), ("noise", 0.5)):
        at.slider(key=f"explain.move.{key}").set_value(value).run()
        assert not at.exception
    assert moved_prediction(at) != unchanged  # far less sure, or another answer
    assert at.metric[0].value == str(int(bundled.test_y[0]))  # the input itself is not changed
    at.button(key="explain.move.reset").click().run()
    assert moved_prediction(at) == unchanged and at.slider(key="explain.move.angle").value == 0


def test_predict_first_asks_scores_and_moves_on(at):
    at.button_group(key="explain.mode").set_value("Predict first").run()
    assert not at.exception and not heatmap_captions(at)
    assert [m.value for m in at.metric] == ["0", "0/0", "0/0"]
    assert at.button(key="explain.quiz.reveal").disabled  # nothing guessed yet
    index = at.session_state["explain.quiz.index"]
    at.session_state["explain.quiz.region"] = "1,1"  # what a click on the digit's centre block stores
    at.button_group(key="explain.quiz.answer").set_value(3).run()
    assert not at.button(key="explain.quiz.reveal").disabled
    at.button(key="explain.quiz.reveal").click().run()
    assert not at.exception
    assert [m.label for m in at.metric][:3] == ["Questions", "Answers right", "Places right"]
    assert at.metric[0].value == "1" and at.metric[1].value in ("0/1", "1/1")
    verdict = next(m.value for m in at.markdown if "the model answered" in m.value)
    assert verdict.startswith(("✅ Right", "❌ Not this time"))
    assert "the image is labelled **" in verdict and " is a **" not in verdict  # never "is a 8"
    assert any("Integrated Gradients" in c for i in at.image for c in i.captions)
    at.button(key="explain.quiz.next").click().run()
    assert at.metric[0].value == "1" and at.button(key="explain.quiz.reveal").disabled  # the score stays
    assert "explain.quiz.region" not in at.session_state or at.session_state["explain.quiz.index"] != index


@pytest.mark.slow
def test_a_colour_model_explains_an_uploaded_photo_resized_as_its_training_images(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", per_class=20, classes=("red-disc", "green-square", "blue-disc"))
    add_dataset("shapes", folder, size=32)
    data = load_dataset("shapes")
    config = RunConfig(adapt_model(ModelConfig(), data.spec), TrainConfig(epochs=3, batch_size=16, device="cpu"))
    store = RunStore()
    run_id = store.create(config, dataset="shapes", name="colour")
    execute_run(store, run_id, data=data)
    at = AppTest.from_file(str(ROOT / "views" / "explain.py"), default_timeout=120).run()  # faithfulness on
    at.selectbox(key="explain.model").set_value(f"run: colour ({run_id})").run()
    assert not at.exception
    at.radio(key="explain.input").set_value("Upload").run()
    photo = io.BytesIO()
    draw_image(*CLASSES["green-square"], np.random.default_rng(3), size=(80, 50)).save(photo, "PNG")
    at.file_uploader(key="explain.upload").upload("photo.png", photo.getvalue(), "image/png").run()
    assert not at.exception and not at.error
    captions = [c for image in at.image for c in image.captions]
    assert {"original", "square (crop)", "32×32", "model input"} <= set(captions)
    assert at.metric[0].value in ("blue-disc", "green-square", "red-disc")  # the classes by name
    assert len(heatmap_captions(at)) == N_METHODS
