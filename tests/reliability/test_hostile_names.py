"""Names read from a user's files (class folders, zip members, a checkpoint's class names) are shown escaped in
the terminal and on the pages: an escape sequence, a newline or a right-to-left mark cannot forge the output."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

HOSTILE = ["\x1b[31mred\x1b[0m", "blue\u202eevil", "new\nline"]
SHOWN = ["\\x1b[31mred\\x1b[0m", "blue\\u202eevil", "new\\nline"]
RAW = ("\x1b", "\u202e", "\x07")  # what must never reach a terminal or a page


def png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((32, 32), value, np.uint8)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def hostile_zip(tmp_path):
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for c, name in enumerate(HOSTILE):
            for i in range(12):
                archive.writestr(f"{name}/{i}.png", png(40 * c + i))
        archive.writestr(f"{HOSTILE[0]}/\x1b]0;pwned\x07.txt", b"not an image")
    return path


def assert_escaped(text: str) -> None:
    assert not any(c in text for c in RAW), repr(text)
    assert "new\nline" not in text


def test_data_add_and_list_print_class_and_file_names_escaped(sandbox, hostile_zip):
    out = sandbox.cli("data", "add", "hostile", str(hostile_zip))
    assert out.returncode == 0, out.stderr[-2000:]
    assert_escaped(out.stdout + out.stderr)
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == SHOWN
    assert "\\x1b]0;pwned\\x07.txt: unsupported file type .txt" in out.stderr
    listed = sandbox.cli("data", "list")
    assert listed.returncode == 0 and listed.stdout
    assert_escaped(listed.stdout + listed.stderr)
    [entry] = [json.loads(line) for line in sandbox.cli("data", "list", "--json").stdout.splitlines()]
    assert entry["classes"] == SHOWN


def test_the_data_page_shows_class_and_file_names_escaped(hostile_zip):
    from cnn_core.data.library import add_dataset
    from tests.app.test_data_page import open_page

    add_dataset("hostile", hostile_zip.read_bytes())
    at = open_page()
    shown = [e.value for kind in ("markdown", "caption", "text", "metric") for e in getattr(at, kind)]
    captions = [image.caption for e in at.get("image") for image in e.proto.imgs]  # the sample strips
    assert_escaped(" ".join(map(str, shown + captions)))
    assert captions == SHOWN
