"""Named datasets: added from a folder or a zip, listed, removed; every bad zip refused and nothing left behind."""

import io
import stat
import zipfile

import numpy as np
import pytest

from cnn_core.data import PUBLIC, dataset_names, dataset_spec, load_dataset, unavailable_reason
from cnn_core.data import archive as archive_module
from cnn_core.data.library import add_dataset, get_dataset, list_datasets, remove_dataset
from cnn_core.errors import BadDataset, DatasetNotFound, InvalidConfig
from cnn_core.settings import datasets_dir
from tests.imagesets import make_image_folder, tree, zip_folder

TWO = ("red-disc", "green-square")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("lib") / "shapes", per_class=12, classes=TWO)


@pytest.fixture(scope="module")
def shapes_zip(shapes):
    return zip_folder(shapes, prefix="shapes/")  # as a file manager zips a folder: inside a top folder


def test_a_folder_becomes_a_named_dataset_every_picker_offers(shapes):
    entry = add_dataset("my-shapes", shapes, size=28, reserved=PUBLIC)
    assert entry.classes == sorted(TWO) and entry.train_counts == [12, 12] and entry.channels == 3
    assert [d.name for d in list_datasets()] == ["my-shapes"] and "my-shapes" in dataset_names()
    spec = dataset_spec("my-shapes")
    assert (spec.channels, spec.size, spec.preprocess) == (3, 28, "photo:crop") and unavailable_reason(
        "my-shapes"
    ) is None
    data = load_dataset("my-shapes")
    assert tuple(data.train_x.shape[1:]) == (3, 28, 28) and data.mean == entry.mean
    remove_dataset("my-shapes")
    assert list_datasets() == [] and tree(datasets_dir()) == set()
    with pytest.raises(DatasetNotFound, match="unknown dataset 'my-shapes'"):
        load_dataset("my-shapes")


def test_a_zip_upload_becomes_a_dataset_with_padding_and_grey(shapes_zip):
    entry = add_dataset("zipped", shapes_zip, size=32, channels=1, fit="pad")
    assert (entry.channels, entry.fit, entry.source) == (1, "pad", "an uploaded zip")
    assert load_dataset("zipped").preprocess == "photo:pad"


def test_names_are_checked_and_never_reused(shapes):
    for bad in ("../up", "a/b", ".hidden", "", "x" * 49, "mnist"):
        with pytest.raises(InvalidConfig):
            add_dataset(bad, shapes, reserved=PUBLIC)
    add_dataset("taken", shapes)
    with pytest.raises(InvalidConfig, match="already exists"):
        add_dataset("taken", shapes)
    with pytest.raises(DatasetNotFound):
        remove_dataset("never-added")


def _zip(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def _members(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def _refused(tmp_path, source, message):
    """The add fails with one line matching ``message`` and writes nothing, inside the datasets folder or beside it."""
    before = tree(tmp_path)
    with pytest.raises((BadDataset, DatasetNotFound, InvalidConfig), match=message) as err:
        add_dataset("attempt", source)
    assert "\n" not in str(err.value)
    assert tree(datasets_dir()) == set() and tree(tmp_path) - before <= {"datasets"}


def test_members_that_climb_out_are_refused_and_nothing_is_written(tmp_path, shapes):
    good = _members(shapes)
    for evil in ("../evil.png", "a/../../evil.png", "/tmp/evil.png", "C:\\evil.png", "c:/evil.png"):
        _refused(tmp_path, _zip(good | {evil: good["red-disc/0000.png"]}), "points outside its folder")
    assert not (tmp_path.parent / "evil.png").exists()


def test_a_symlink_member_is_skipped_and_not_created(shapes):
    entry = add_dataset("links", _zip(_members(shapes), links={"red-disc/passwd.png": "/etc/passwd"}))
    assert ["red-disc/passwd.png", "a symbolic link (not extracted)"] in entry.skipped
    assert not any(p.is_symlink() for p in (datasets_dir() / "links").rglob("*"))


def test_a_zip_bomb_is_refused_before_extraction(tmp_path, monkeypatch):
    monkeypatch.setattr(archive_module, "MAX_UNPACKED_BYTES", 10 << 20)
    bomb = _zip({f"a/{i}.png": bytes(8 << 20) for i in range(3)})  # 24 MB of zeros in ~25 KB
    assert len(bomb) < 100_000
    _refused(tmp_path, bomb, "unpacks to 24 MB; at most 10 MB is accepted")


def test_a_member_that_inflates_past_its_declared_size_is_caught(tmp_path, shapes):
    data = bytearray(_zip(_members(shapes) | {"red-disc/zz.png": bytes(1 << 20)}))
    at = data.rfind(b"red-disc/zz.png")  # the central directory entry: lie about the size there
    central = data.rfind(b"PK\x01\x02", 0, at)
    data[central + 24 : central + 28] = (1000).to_bytes(4, "little")
    _refused(tmp_path, bytes(data), "inflates past its declared size|cannot be extracted")


@pytest.mark.slow
def test_fifty_thousand_tiny_files_are_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(50_000):
            archive.writestr(f"c{i % 2}/{i}.png", b"x")
    _refused(tmp_path, buffer.getvalue(), "holds 50,000 entries; at most 42,000")


@pytest.mark.parametrize(
    "members, message",
    [
        ({}, "no image files in the zip"),
        ({"loose.png": b"x"}, "no class folders"),
        ({"only/0.png": b"x"}, "only one class"),
        ({"a/x.txt": b"x", "b/y.txt": b"y"}, "no image files in the zip"),
    ],
    ids=["empty", "zero-classes", "one-class", "no-images"],
)
def test_zips_without_a_dataset_in_them_are_refused(tmp_path, members, message):
    _refused(tmp_path, _zip(members), message)


def test_a_corrupt_image_among_good_ones_is_skipped_and_listed(shapes):
    members = _members(shapes) | {"green-square/broken.png": b"\x89PNG\r\n\x1a\nbroken"}
    entry = add_dataset("partly-broken", _zip(members))
    assert entry.train_counts == [12, 12]
    assert entry.skipped[0][0] == "green-square/broken.png" and "not an image" in entry.skipped[0][1]


def test_not_a_zip_and_a_missing_path_are_one_line_errors(tmp_path):
    _refused(tmp_path, b"PK\x03\x04 but not really", "not a readable zip file")
    _refused(tmp_path, str(tmp_path / "nowhere.zip"), "neither a folder nor a zip file")


def test_a_damaged_dataset_json_is_left_out_of_the_list_and_named_on_load(shapes):
    add_dataset("fine", shapes)
    add_dataset("damaged", shapes)
    (datasets_dir() / "damaged" / "dataset.json").write_text("{not json")
    assert [d.name for d in list_datasets()] == ["fine"]
    with pytest.raises(BadDataset, match="damaged dataset.json"):
        get_dataset("damaged")


def test_the_decoded_cache_makes_the_second_load_skip_decoding(shapes, monkeypatch):
    add_dataset("cached", shapes)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr("cnn_core.data.cache.decode", no_decoding)
    data = load_dataset("cached")
    assert len(np.unique(data.train_y.numpy())) == 2
