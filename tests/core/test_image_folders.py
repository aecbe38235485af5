"""Class-folder datasets: decoding, colour detection, crop/pad, layouts, EXIF, the cache and what is refused."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_core.config import LENET5_CONV, ModelConfig, RunConfig, TrainConfig
from cnn_core.data import adapt_model, check_fits, load_dataset, preprocess
from cnn_core.data.cache import load_image_folder
from cnn_core.data.folders import MIN_PER_CLASS, list_images
from cnn_core.data.photo import photo_steps, resize_square, to_square
from cnn_core.errors import BadDataset, DatasetNotFound
from cnn_core.training.loop import train
from tests.imagesets import CLASSES, make_image_folder


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("shapes") / "shapes", per_class=40)


def test_class_folders_load_as_colour_tensors_named_after_their_folders(shapes, tmp_path):
    data = load_dataset(data_dir=shapes, size=32)
    assert data.classes == sorted(CLASSES)
    assert tuple(data.train_x.shape[1:]) == (3, 32, 32) and data.train_x.dtype == torch.uint8
    assert len(data.train_y) + len(data.val_y) + len(data.test_y) == 160
    assert np.bincount(data.test_y.numpy()).tolist() == [8, 8, 8, 8]  # stratified fifth held out
    assert data.preprocess == "photo:crop" and data.name == "folder"


def test_grey_images_become_one_channel_unless_colour_is_forced(tmp_path):
    folder = make_image_folder(tmp_path / "grey", per_class=6, classes=("red-disc", "blue-disc"), grey=True, fmt="JPEG")
    assert load_dataset(data_dir=folder, size=28).train_x.shape[1] == 1
    assert load_dataset(data_dir=folder, size=28, channels=3).train_x.shape[1] == 3


def test_crop_keeps_the_centre_and_pad_keeps_the_whole_image():
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)  # red left third, green centre, blue right third
    wide[:, 20:40] = (0, 255, 0)
    wide[:, 40:] = (0, 0, 255)
    image = Image.fromarray(wide)
    cropped = resize_square(image, 28, "crop")
    assert cropped.shape == (28, 28, 3) and (cropped[:, :, 1] > 200).all()  # only the green centre is left
    padded = np.asarray(to_square(image, "pad"))
    assert padded.shape == (60, 60, 3)
    assert tuple(padded[20, 5]) == (255, 0, 0) and tuple(padded[20, 55]) == (0, 0, 255)  # both ends kept
    assert tuple(padded[0, 30]) == tuple(padded[59, 30])  # bars above and below of one edge colour


def test_a_train_and_test_layout_keeps_its_own_test_set(tmp_path):
    make_image_folder(tmp_path / "split" / "train", per_class=10, classes=("red-disc", "green-square"))
    make_image_folder(tmp_path / "split" / "test", per_class=3, classes=("red-disc", "green-square"), seed=1)
    data = load_dataset(data_dir=tmp_path / "split", size=32)
    assert len(data.test_y) == 6 and len(data.train_y) + len(data.val_y) == 20


def test_a_lone_wrapping_folder_is_stepped_into(tmp_path):
    make_image_folder(tmp_path / "outer" / "pets", per_class=5, classes=("red-disc", "green-square"))
    assert list_images(tmp_path / "outer").classes == ["green-square", "red-disc"]


def test_exif_orientation_is_honoured(tmp_path):
    upright = np.zeros((40, 20, 3), np.uint8)
    upright[:20] = 255  # white top half, black bottom half, 20 wide and 40 tall
    stored = Image.fromarray(upright).rotate(90, expand=True)  # as a phone stores it: on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    for cls in ("a", "b"):
        (tmp_path / "exif" / cls).mkdir(parents=True)
        for i in range(MIN_PER_CLASS):
            stored.save(tmp_path / "exif" / cls / f"{i}.jpg", exif=exif.tobytes(), quality=95)
    images, _ = load_image_folder(tmp_path / "exif", 28, 1, "pad")
    picture = images.images[0, 0]
    assert picture[4, 14] > 200 and picture[24, 14] < 60  # bright on top once turned upright


def test_the_second_load_comes_from_the_cache_and_a_changed_file_is_noticed(shapes, tmp_path):
    first, cached = load_image_folder(shapes, 32, cache_dir=tmp_path / "cache")
    again, cached_again = load_image_folder(shapes, 32, cache_dir=tmp_path / "cache")
    assert not cached and cached_again
    assert np.array_equal(first.images, again.images) and np.array_equal(first.labels, again.labels)
    assert not load_image_folder(shapes, 48, cache_dir=tmp_path / "cache")[1]  # another size: another key
    touched = next((shapes / "red-disc").iterdir())
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    assert not load_image_folder(shapes, 32, cache_dir=tmp_path / "cache")[1]


def test_a_damaged_cache_file_is_decoded_again(shapes, tmp_path):
    load_image_folder(shapes, 32, cache_dir=tmp_path / "cache")
    for path in (tmp_path / "cache").iterdir():
        path.write_bytes(b"not safetensors")
    images, cached = load_image_folder(shapes, 32, cache_dir=tmp_path / "cache")
    assert not cached and len(images.labels) == 160


def test_corrupt_and_unsupported_files_are_skipped_and_listed(tmp_path):
    folder = make_image_folder(tmp_path / "mixed", per_class=6, classes=("red-disc", "green-square"))
    (folder / "red-disc" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "red-disc" / "notes.txt").write_text("hello")
    (folder / "loose.png").write_bytes(b"")
    os.symlink("/etc/hostname", folder / "green-square" / "link.png")
    images, _ = load_image_folder(folder, 28)
    assert len(images.labels) == 12
    skipped = dict(images.skipped)
    assert set(skipped) == {"red-disc/broken.png", "red-disc/notes.txt", "loose.png", "green-square/link.png"}
    assert "symbolic link" in skipped["green-square/link.png"]


def test_an_image_over_the_pixel_limit_is_skipped_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_IMAGE_PIXELS", 50 * 50)
    folder = make_image_folder(tmp_path / "big", per_class=5, classes=("red-disc", "green-square"))
    Image.new("RGB", (200, 200)).save(folder / "red-disc" / "huge.png")
    images, _ = load_image_folder(folder, 28)
    assert dict(images.skipped)["red-disc/huge.png"].startswith("image too large: 200×200")


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda f: f.mkdir(), "no class folders in"),
        (lambda f: make_image_folder(f, per_class=6, classes=("red-disc",)), "only one class (red-disc)"),
        (lambda f: [(f / c).mkdir(parents=True) or (f / c / "a.txt").write_text("x") for c in "ab"], "no readable"),
        (lambda f: make_image_folder(f, per_class=3, classes=("red-disc", "blue-disc")), "has 3 training image"),
    ],
    ids=["zero-classes", "one-class", "no-images", "too-few"],
)
def test_an_unusable_folder_is_refused_in_one_line_saying_what_to_fix(tmp_path, build, message):
    folder = tmp_path / "bad"
    build(folder)
    with pytest.raises(BadDataset, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load_image_folder(folder, 28)
    assert "\n" not in str(err.value)


def test_more_images_than_the_limit_are_refused_before_decoding(tmp_path):
    folder = make_image_folder(tmp_path / "many", per_class=6, classes=("red-disc", "blue-disc"))
    with pytest.raises(BadDataset, match="more than 10 images"):
        list_images(folder, max_images=10)


def test_a_missing_folder_is_not_found(tmp_path):
    with pytest.raises(DatasetNotFound):
        list_images(tmp_path / "nowhere")


def test_the_model_follows_the_data_and_a_32_pixel_lenet_is_lecuns_original(shapes):
    data = load_dataset(data_dir=shapes, size=32)
    model = adapt_model(ModelConfig(), data.spec)
    assert (model.in_channels, model.input_size, model.num_classes) == (3, 32, 4)
    assert model.conv[0].padding == 0 and model.conv[1:] == LENET5_CONV[1:]
    assert 0 < model.input_mean < 1 and model.input_mean == data.mean
    check_fits(data, model)
    assert adapt_model(ModelConfig(), load_dataset(data_dir=shapes, size=48).spec).conv == LENET5_CONV


@pytest.mark.slow
def test_a_short_run_on_coloured_shapes_scores_well_above_chance(shapes):
    data = load_dataset(data_dir=shapes, size=32)
    model = adapt_model(ModelConfig(), data.spec)
    result = train(RunConfig(model, TrainConfig(epochs=12, batch_size=16, lr=3e-3, device="cpu")), data)
    assert result.test_accuracy >= 0.75  # chance is 0.25


def test_photo_steps_show_each_stage_and_end_at_the_model_input():
    photo = Image.fromarray(np.full((30, 50, 3), (10, 200, 30), np.uint8))
    steps = photo_steps(photo, 32, 1, "crop")
    assert steps.square.size == (30, 30) and steps.resized.shape == (32, 32, 3)
    assert steps.model_input.shape == (1, 32, 32) and 0 < steps.model_input.max() <= 1
    assert photo_steps(photo, 32, 3, "pad").model_input.shape == (3, 32, 32)


def _named_classes(folder, names, per_class=2):
    from tests.imagesets import draw_image

    rng = np.random.default_rng(0)
    for name in names:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            draw_image((200, 40, 40), "ellipse", rng).save(folder / name / f"{i}.png")
    return folder


def test_classes_come_in_their_natural_order_numbers_as_numbers_and_digit_words_as_digits(tmp_path):
    words = ["eight", "five", "four", "nine", "one", "seven", "six", "three", "two", "Zero"]
    assert list_images(_named_classes(tmp_path / "words", words)).classes == [
        "Zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"
    ]  # fmt: skip
    numbered = _named_classes(tmp_path / "numbered", ["class10", "class2", "class1", "apple"])
    assert list_images(numbered).classes == ["apple", "class1", "class2", "class10"]
    assert list_images(numbered, order=["class10", "apple"]).classes == ["class10", "apple", "class1", "class2"]
