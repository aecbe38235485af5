"""AppTest: the Admin page says where runs train and lets an administrator send them to a Ray cluster; an
address that does not answer as Ray does is refused in one line and changes nothing."""

import socket

from streamlit.testing.v1 import AppTest

from cnn_core.jobs.bridge import chosen_address
from cnn_core.runs import RunStore
from tests.conftest import ROOT


def _page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "views" / "admin.py"), default_timeout=60).run()
    assert not at.exception
    return at


def test_runs_train_here_until_an_administrator_names_a_cluster_and_a_dead_address_is_refused():
    at = _page()
    assert any(m.value.startswith("**This machine**") for m in at.markdown)
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    at.text_input(key="admin.cluster_address").input(dead)
    next(b for b in at.button if b.label == "Send runs there").click().run()
    assert not at.exception
    assert [e.value for e in at.error if "cannot reach the Ray cluster" in e.value]
    assert chosen_address(RunStore()) is None
    at.text_input(key="admin.cluster_address").input("not an address")
    next(b for b in at.button if b.label == "Send runs there").click().run()
    assert [e.value for e in at.error if "expected HOST:PORT" in e.value]
