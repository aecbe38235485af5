"""AppTest: the Filters page shows each conv layer's filters and every feature map, compares max and
average pooling, and scrubs through a trained run's epochs."""

import io
import re

import pyarrow as pa
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnn_core.config import ConvBlock, ModelConfig, RunConfig, TrainConfig
from cnn_core.data import load_dataset
from cnn_core.model import build_model
from cnn_core.model.checkpoint import save_checkpoint
from cnn_core.runs import RunStore, Status
from cnn_core.runs.runner import execute_run
from tests.conftest import ROOT
from tests.imagesets import make_image_folder

LENET5_MAPS = [
    "conv1: 6 × 28 × 28",
    "act1: 6 × 28 × 28",
    "pool1: 6 × 14 × 14",
    "conv2: 16 × 10 × 10",
    "act2: 16 × 10 × 10",
    "pool2: 16 × 5 × 5",
    "conv3: 120 × 1 × 1",
    "act3: 120 × 1 × 1",
]


def open_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "views" / "filters.py"), default_timeout=60).run()
    assert not at.exception
    return at


def map_captions(at: AppTest) -> list[str]:
    """The feature maps' names and shapes (their captions without the colour scale)."""
    return [c.split(" (colours")[0] for image in at.image for c in image.captions if ": " in c and " × " in c]


def filter_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if " filters of " in c.value)


def favourite_captions(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions if c.startswith("#")]


def test_a_filters_favourite_images_are_its_nine_strongest_and_nine_weakest_test_images():
    at = open_page()
    assert "Favourite images" in [h.value for h in at.subheader]
    captions = favourite_captions(at)
    assert len(captions) == 18 and all(re.fullmatch(r"#\d+ · \d · -?[0-9.]+", c) for c in captions)
    peaks = [float(c.rsplit(" · ", 1)[1]) for c in captions]
    assert peaks[:9] == sorted(peaks[:9], reverse=True) and min(peaks[:9]) >= max(peaks[9:])
    at.number_input(key="filters.favourite.conv1").set_value(4).run()
    assert favourite_captions(at) != captions
    at.selectbox(key="filters.layer").set_value("conv3").run()
    assert not at.exception and len(favourite_captions(at)) == 18
    assert any("the 32×32 patch" in c.value for c in at.caption)


def test_bundled_model_shows_filters_weights_and_the_articles_feature_maps():
    at = open_page()
    assert at.selectbox(key="filters.model").options == ["lenet5-mnist-max", "lenet5-mnist-avg"]
    assert not at.slider  # a bundled model has no epochs to scrub through
    assert filter_caption(at).startswith("6 filters of conv1, the only input channel")
    assert map_captions(at) == LENET5_MAPS


def test_a_deeper_layer_shows_one_input_channel_or_the_mean():
    at = open_page()
    at.selectbox(key="filters.layer").set_value("conv2").run()
    show = at.selectbox(key="filters.channel")
    assert show.options == ["mean over input channels"] + [f"input channel {c}" for c in range(1, 7)]
    assert any(c.value.startswith("16 filters of conv2, mean over 6 input channels") for c in at.caption)
    show.set_value("input channel 3").run()
    assert any(c.value.startswith("16 filters of conv2, input channel 3 of 6") for c in at.caption)


def test_another_test_digit_and_max_and_average_pooling_side_by_side():
    at = open_page()
    at.selectbox(key="filters.class").set_value("7").run()
    at.number_input(key="filters.nth").set_value(3).run()
    at.toggle(key="filters.compare").set_value(True).run()
    assert not at.exception
    assert map_captions(at) == LENET5_MAPS * 3  # the chosen model, then max and avg side by side
    assert {"**lenet5-mnist-max**", "**lenet5-mnist-avg**"} <= {m.value for m in at.markdown}


def test_bad_upload_is_one_line_and_the_page_keeps_working():
    at = open_page()
    at.radio(key="filters.input").set_value("Upload").run()
    at.file_uploader(key="filters.upload").upload("digit.gif", b"GIF89a but not really", "image/gif").run()
    assert not at.exception and len(at.error) == 1 and "\n" not in at.error[0].value
    assert at.error[0].value.startswith(("not an image CNN Lab can read", "truncated or corrupt image"))
    assert not map_captions(at)
    at.selectbox(key="filters.layer").set_value("conv3").run()  # filters still work
    assert any(c.value.startswith("120 filters of conv3") for c in at.caption)


def test_an_uploaded_digit_goes_through_the_network(bundled):
    at = open_page()
    at.radio(key="filters.input").set_value("Upload").run()
    assert [i.value for i in at.info] == ["Upload a digit image."] and not map_captions(at)
    buffer = io.BytesIO()
    Image.fromarray(255 - bundled.test_x[7, 0].numpy()).save(buffer, format="TIFF")  # dark ink on white
    at.file_uploader(key="filters.upload").upload("digit.tiff", buffer.getvalue(), "image/tiff").run()
    assert not at.exception and not at.error
    assert map_captions(at) == LENET5_MAPS
    assert any("input (as the model sees it)" in i.captions for i in at.image)


@pytest.mark.slow
def test_a_trained_run_gets_an_epoch_slider_that_shows_each_epochs_filters(small_data):
    store = RunStore()  # the private store of this test (CNN_LAB_RUNS)
    run_id = store.create(
        RunConfig(train=TrainConfig(epochs=2, batch_size=64, device="cpu")), dataset="mnist", name="two epochs"
    )
    execute_run(store, run_id, data=small_data)
    at = open_page()
    label = f"run: two epochs ({run_id})"
    at.selectbox(key="filters.model").set_value(label).run()
    epoch = at.slider(key="filters.epoch")
    assert (epoch.min, epoch.max, epoch.value) == (1, 2, 2)
    final = filter_caption(at)
    epoch.set_value(1).run()
    assert not at.exception
    assert filter_caption(at) != final  # other weights, another scale
    assert map_captions(at) == LENET5_MAPS
    assert any("How far each layer's filters moved in each epoch" in c.value for c in at.caption)
    change = [c for c in at.get("vega_lite_chart") if "moved since the epoch before" in c.proto.spec]
    rows = pa.ipc.open_stream(change[0].proto.datasets[0].data.data).read_all().to_pandas()
    assert list(rows["epoch"]) == [2, 2, 2] and list(rows["layer"]) == ["conv1", "conv2", "conv3"]  # none at epoch 1
    at.button(key="filters.play").click().run()  # at epoch 1 of 2: plays on from here
    assert at.button(key="filters.play").label == "⏸ Pause" and at.session_state["filters.playing"]
    at.button(key="filters.play").click().run()
    assert at.button(key="filters.play").label == "▶ Play" and at.slider(key="filters.epoch").value == 1


def _finished_run(store: RunStore, name: str, pooling: str = "max", group: str | None = "cmp", accuracy=None) -> str:
    """A completed run with a final checkpoint, made without training (its weights are a fresh init)."""
    config = RunConfig(model=ModelConfig().with_pooling(pooling), train=TrainConfig(seed=3))
    run_id = store.create(config, dataset="mnist", name=name, group_id=group)
    path = save_checkpoint(store.run_dir(run_id) / "model.safetensors", build_model(config.model, seed=1), config.model)
    store.claim(run_id)
    store.finish(run_id, Status.COMPLETED, checkpoint=str(path), test_accuracy=accuracy)
    return run_id


def test_the_model_picker_opens_on_the_newest_finished_run():
    store = RunStore()
    _finished_run(store, "older")
    newest = _finished_run(store, "newest")
    store.create(RunConfig(), dataset="mnist", name="still queued")
    at = open_page()
    picker = at.selectbox(key="filters.model")
    assert picker.value == f"run: newest ({newest})" and picker.options[:2] == ["lenet5-mnist-max", "lenet5-mnist-avg"]


def test_max_and_average_pooling_side_by_side_are_the_run_and_its_pooling_twin():
    store = RunStore()
    _finished_run(store, "lenet max")
    _finished_run(store, "lenet avg", pooling="avg")
    at = open_page()  # on the newest run: the avg one
    at.toggle(key="filters.compare").set_value(True).run()
    assert not at.exception
    names = [m.value for m in at.markdown if m.value.startswith("**")]
    assert names == ["**lenet max (max)**", "**lenet avg (avg)**"]  # max first, whichever was chosen
    alone = _finished_run(store, "no twin", group=None)
    at.run()  # the picker lists it from the next run on
    at.selectbox(key="filters.model").set_value(f"run: no twin ({alone})").run()
    bundled = ["**lenet5-mnist-max**", "**lenet5-mnist-avg**"]
    assert [m.value for m in at.markdown if m.value.startswith("**")] == bundled


def test_feature_maps_come_with_a_colour_legend_and_each_layers_scale():
    at = open_page()
    assert any("−scale · 0 · +scale" in i.captions for i in at.image)  # the colour bar
    legend = [c.value for c in at.caption if c.value.startswith("**Red**")]
    assert len(legend) == 1 and "**White**: zero" in legend[0] and "**Blue**: a negative" in legend[0]
    captions = [c for i in at.image for c in i.captions if " × " in c]
    assert len(captions) == len(LENET5_MAPS) and all(re.search(r"\(colours ±[0-9.]+\)$", c) for c in captions)


@pytest.mark.slow
def test_a_colour_model_shows_its_first_filters_as_rgb_pictures_and_colour_feature_maps(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", per_class=40, size=(32, 32))
    data = load_dataset(data_dir=folder, size=32, channels=3)
    model = ModelConfig(in_channels=3, input_size=32, num_classes=4, conv=(ConvBlock(6, 5), ConvBlock(8, 5)), fc=(16,))
    store = RunStore()
    config = RunConfig(model=model, train=TrainConfig(epochs=2, batch_size=32, device="cpu"))
    run_id = store.create(config, dataset=data.name, data_dir=str(folder), name="shapes")
    execute_run(store, run_id, data=data)
    at = open_page()
    at.selectbox(key="filters.model").set_value(f"run: shapes ({run_id})").run()
    assert not at.exception
    show = at.selectbox(key="filters.channel")
    assert show.value == "colour (RGB)" and show.options[1:] == ["mean over input channels"] + [
        f"input channel {c}" for c in (1, 2, 3)
    ]
    tiles = [c for image in at.image for c in image.captions if re.fullmatch(r"\d: ±[0-9.e-]+", c)]
    assert len(tiles) == 6  # each filter on its own scale, written under it
    inputs = [i for i in at.image if "input (as the model sees it)" in i.captions]
    assert inputs and map_captions(at)[:2] == ["conv1: 6 × 28 × 28", "act1: 6 × 28 × 28"]
    show.set_value("input channel 2").run()
    assert filter_caption(at).startswith("6 filters of conv1, input channel 2 of 3")
    assert len(favourite_captions(at)) == 18


def test_a_sweeps_trials_are_one_entry_and_the_picker_opens_on_the_best_run():
    from cnn_core.config.sweep import SweepConfig

    store = RunStore()
    sweep = store.sweeps.create(SweepConfig.from_dict({"space": {"train.lr": {"grid": [0.01, 0.1]}}, "name": "lr"}))
    best = _finished_run(store, "good trial", group=sweep, accuracy=0.98)
    _finished_run(store, "one-epoch trial", group=sweep, accuracy=0.31)  # the newest: it used to be the default
    _finished_run(store, "my run", accuracy=0.95)
    at = open_page()
    picker = at.selectbox(key="filters.model")
    assert picker.options == ["lenet5-mnist-max", "lenet5-mnist-avg", picker.options[2], "sweep: lr (2 trials)"]
    assert picker.value == "sweep: lr (2 trials)"
    trial = at.selectbox(key="filters.trial")
    assert trial.value == f"run: good trial ({best})" and len(trial.options) == 2


def test_a_link_to_a_sweeps_trial_opens_its_sweep_on_that_trial():
    from cnn_core.config.sweep import SweepConfig
    from cnn_core.explain.filters import run_label

    store = RunStore()
    sweep = store.sweeps.create(SweepConfig.from_dict({"space": {"train.lr": {"grid": [0.01, 0.1]}}, "name": "lr"}))
    _finished_run(store, "best trial", group=sweep, accuracy=0.98)
    other = _finished_run(store, "other trial", group=sweep, accuracy=0.50)
    at = AppTest.from_file(str(ROOT / "views" / "filters.py"), default_timeout=60)
    at.session_state["filters.model"] = run_label(store.get(other))  # what the Sweep page's "Open on Filters" sets
    at.run()
    assert not at.exception
    assert at.selectbox(key="filters.model").value == "sweep: lr (2 trials)"
    assert at.selectbox(key="filters.trial").value == f"run: other trial ({other})"
