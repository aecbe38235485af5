"""AppTest: the Data page adds a folder of class folders, shows its counts and samples, refuses bad input, deletes."""

from streamlit.testing.v1 import AppTest

from cnn_core.data.library import add_dataset, list_datasets
from tests.conftest import ROOT
from tests.imagesets import make_image_folder


def open_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "views" / "data.py"), default_timeout=60).run()
    assert not at.exception
    return at


def submit(at: AppTest, name: str, folder: str) -> AppTest:
    at.text_input(key="data.name").set_value(name)
    at.text_input(key="data.folder").set_value(folder)
    at.button[0].click()  # the form's submit button is the page's first button
    return at.run()


def test_a_folder_path_becomes_a_dataset_with_its_counts_and_samples(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", per_class=7, classes=("red-disc", "green-square", "blue-disc"))
    (folder / "blue-disc" / "notes.txt").write_text("not an image")
    at = open_page()
    assert "None yet" in at.info[0].value
    submit(at, "shapes", str(folder))
    assert not at.exception and not at.error
    assert "Added **shapes**: 21 images in 3 classes (1 file skipped)" in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"images": "21", "classes": "3", "input": "32×32", "colour": "RGB"}
    assert ["images per class" in c.proto.spec for c in at.get("vega_lite_chart")] == [True]
    strips = at.get("image")
    assert sorted(caption for strip in strips for caption in strip.captions) == [
        "blue-disc",
        "green-square",
        "red-disc",
    ]
    assert at.selectbox(key="data.pick").value == "shapes"
    assert [d.name for d in list_datasets()] == ["shapes"]


def test_bad_input_gets_one_line_and_the_page_keeps_working(tmp_path):
    at = open_page()
    submit(at, "", str(tmp_path))
    assert "Give the dataset a name" in at.error[0].value
    submit(at, "empty", str(tmp_path / "nowhere"))
    assert at.error[0].value.endswith("is neither a folder nor a zip file") and not at.exception
    (tmp_path / "one" / "only").mkdir(parents=True)
    submit(at, "one", str(tmp_path / "one"))
    assert "no class folders" in at.error[0].value or "only one class" in at.error[0].value
    assert list_datasets() == []


def test_a_dataset_is_deleted_after_confirming(tmp_path):
    add_dataset("old", make_image_folder(tmp_path / "old", per_class=5, classes=("red-disc", "blue-disc")))
    at = open_page()
    assert at.selectbox(key="data.pick").value == "old"
    at.checkbox(key="data.confirm").check().run()
    at.button(key="data.delete").click().run()
    assert not at.exception and list_datasets() == [] and "None yet" in at.info[0].value


def test_the_class_order_is_shown_natural_and_can_be_changed(tmp_path):
    from cnn_core.data import load_dataset

    folder = make_image_folder(tmp_path / "shapes", per_class=6, classes=("red-disc", "green-square", "blue-disc"))
    for old, new in (("red-disc", "two"), ("green-square", "ten"), ("blue-disc", "one")):
        (folder / old).rename(folder / new)
    at = submit(open_page(), "counted", str(folder))
    order = next(t for t in at.text_area if t.label.startswith("Class order"))
    assert order.value == "one\ntwo\nten"  # not alphabetical (one, ten, two): numbers as numbers
    order.set_value("ten\none\ntwo")
    next(b for b in at.button if b.label == "Save the order").click().run()
    assert not at.exception and not at.error
    assert list_datasets()[0].classes == ["ten", "one", "two"]
    assert load_dataset("counted").classes == ["ten", "one", "two"]  # what a run trains with
    order = next(t for t in at.text_area if t.label.startswith("Class order"))
    order.set_value("ten\none")
    next(b for b in at.button if b.label == "Save the order").click().run()
    assert at.error[0].value == "the order must name each of the 3 classes once; missing: two"
