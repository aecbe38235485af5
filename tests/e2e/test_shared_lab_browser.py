"""A shared lab in real Chromium against a real OpenID Connect provider on loopback: people sign in, each sees
their own runs and what is shared, quotas speak in one line, an administrator sees and acts on everything,
sign-out ends it; and without sign-in the app binds to loopback, or refuses to act when served beyond it."""

import os
import re
import shutil
import socket

import pytest
from playwright.sync_api import Browser, Page, expect

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.runs import RunStore, Status
from tests.e2e.oidc import sign_in, sign_out, start_app_with_sign_in
from tests.e2e.serve import ROOT, start_app, stop_app
from tests.polling import wait_until

pytestmark = pytest.mark.slow

RUNS = {  # name -> (owner, shared)
    "alice-private-run": ("alice@example.com", False),
    "bob-private-run": ("bob@example.com", False),
    "teacher-reference": ("teacher@example.com", True),
}


def _finished_run(store: RunStore, name: str, owner: str, shared: bool) -> str:
    run_id = store.create(RunConfig(train=TrainConfig(epochs=1)), "mnist", name=name, claim=True, owner=owner)
    weights = store.run_dir(run_id) / "model.safetensors"  # the bundled LeNet-5's weights: Filters can open it
    shutil.copyfile(ROOT / "checkpoints" / "lenet5-mnist-max.safetensors", weights)
    store.finish(run_id, Status.COMPLETED, epochs_done=1, test_accuracy=0.9, checkpoint=str(weights))
    if shared:
        store.share(run_id, True)
    return run_id


@pytest.fixture(scope="module")
def lab(tmp_path_factory, oidc_provider):
    """The app with sign-in, teacher@ as administrator, one run queued or running per person at most."""
    runs_dir = tmp_path_factory.mktemp("shared-lab")
    store = RunStore(runs_dir)
    ids = {name: _finished_run(store, name, *how) for name, how in RUNS.items()}
    env = {"CNN_LAB_ADMINS": "teacher@example.com", "CNN_LAB_QUOTA_RUNS": "1"}
    proc, url = start_app_with_sign_in(runs_dir, oidc_provider, env=env)
    yield url, store, ids
    stop_app(proc)


def _person(browser: Browser, url: str, email: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(30_000)
    sign_in(page, url, email)
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    return page


def _open(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=title).click()
    expect(page.locator("h1").filter(has_text=title)).to_be_visible()


def _options(page: Page, picker: str) -> list[str]:
    """The options a picker offers (its list, opened and closed again)."""
    box = page.get_by_role("combobox", name=picker, exact=True)
    expect(box).to_be_visible(timeout=60_000)
    for _ in range(5):  # a rerun that ends after the click closes the list: open it again
        expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)  # the script run is over
        box.click()
        try:
            expect(page.get_by_role("option").first).to_be_visible(timeout=5_000)
        except AssertionError:
            continue
        options = page.get_by_role("option").all_inner_texts()
        page.keyboard.press("Escape")
        return options
    raise AssertionError(f"the {picker!r} picker would not open")


def _names_in(options: list[str]) -> set[str]:
    return {name for name in RUNS if any(name in option for option in options)}


def test_two_people_see_their_own_runs_and_the_shared_one_never_each_others(browser, lab):
    url, _, _ = lab
    alice, bob = _person(browser, url, "alice@example.com"), _person(browser, url, "bob@example.com")
    try:
        for page, own, other in (
            (alice, "alice-private-run", "bob-private-run"),
            (bob, "bob-private-run", "alice-private-run"),
        ):
            for title, picker in (("Train", "run"), ("Compare", "runs"), ("Filters & feature maps", "Model")):
                _open(page, title)
                seen = _names_in(_options(page, picker))
                assert own in seen and "teacher-reference" in seen, (title, seen)
                assert other not in seen, (title, seen)
            assert page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Admin").count() == 0
            page.goto(url + "/admin")  # not listed for a visitor: a deep link does not reach it either
            expect(page.get_by_text("Queue", exact=True)).to_have_count(0)
    finally:
        alice.context.close()
        bob.context.close()


def test_a_shared_run_cannot_be_changed_by_a_visitor_and_a_quota_is_one_line(browser, lab):
    url, store, ids = lab
    alice = _person(browser, url, "alice@example.com")
    try:
        _open(alice, "Compare")
        assert _names_in(_options(alice, "run")) == {"alice-private-run"}  # she manages her own runs only

        _open(alice, "Train")  # two launches with a share of one: the second is refused in one line
        alice.get_by_role("slider", name="epochs").first.focus()
        alice.keyboard.press("End")  # a long run, so the first is still active at the second launch
        launch = alice.get_by_role("button", name=re.compile("Launch training"))
        launch.click()
        expect(alice.get_by_text(re.compile("Queued"))).to_be_visible()
        launch.click()
        expect(alice.get_by_text(re.compile(r"queued or running and your limit is 1"))).to_be_visible()
        launched = [r for r in store.list(owner="alice@example.com") if r.status.active]
        assert len(launched) == 1
        alice.get_by_role("button", name="⏹ Stop").click()  # her own run: she may stop it
        wait_until(lambda: store.get(launched[0].id).finished, 60, "Alice's run to stop")
        assert store.get(ids["teacher-reference"]).name == "teacher-reference"
    finally:
        alice.context.close()


def test_an_administrator_sees_everyone_and_reorders_the_queue(browser, lab):
    url, store, ids = lab
    teacher = _person(browser, url, "teacher@example.com")
    try:
        expect(teacher.get_by_text("administrator")).to_be_visible()
        _open(teacher, "Train")
        assert _names_in(_options(teacher, "run")) == set(RUNS)
        _open(teacher, "Admin")
        expect(teacher.get_by_text("Every run")).to_be_visible()
        table = teacher.get_by_test_id("stDataFrame").last
        expect(table).to_be_visible()
        # an administrator changes anyone's run: Bob's, from the Compare page's manager
        _open(teacher, "Compare")
        manage = teacher.get_by_role("combobox", name="run", exact=True)
        manage.click()
        manage.fill("bob-private-run")  # the list filters as one types
        teacher.keyboard.press("Enter")
        expect(manage).to_have_value(re.compile("bob-private-run"))
        expect(teacher.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
        new_name = teacher.get_by_label("new name")
        expect(new_name).to_have_value("bob-private-run")
        new_name.fill("renamed-by-teacher")
        new_name.press("Enter")
        expect(teacher.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
        teacher.get_by_role("button", name="Rename").click()
        expect(teacher.get_by_text(re.compile("Renamed"))).to_be_visible()
        assert store.get(ids["bob-private-run"]).name == "renamed-by-teacher"
        store.rename(ids["bob-private-run"], "bob-private-run")
    finally:
        teacher.context.close()


def test_sign_out_returns_to_the_sign_in_screen_for_every_page(browser, lab):
    url, _, _ = lab
    alice = _person(browser, url, "alice@example.com")
    try:
        sign_out(alice)
        expect(alice.get_by_role("button", name="Sign in")).to_be_visible()
        alice.goto(url + "/train")
        expect(alice.get_by_role("button", name="Sign in")).to_be_visible()
        expect(alice.get_by_role("button", name=re.compile("Launch training"))).to_have_count(0)
    finally:
        alice.context.close()


# -- without sign-in -----------------------------------------------------------------------------------------------


def _listening(port: int) -> set[str]:
    """The local addresses a TCP port listens on, read from /proc/net/tcp and tcp6."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not os.path.exists(table):
            continue
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # kernel byte order
                found.add(socket.inet_ntop(family, words))
    return found


def test_out_of_the_box_the_app_listens_on_loopback_only(tmp_path, page_factory):
    proc, url = start_app(tmp_path)
    try:
        port = int(url.rsplit(":", 1)[1])
        assert _listening(port) == {"127.0.0.1"}
        page = page_factory()
        page.goto(url + "/train")
        expect(page.get_by_role("button", name=re.compile("Launch training"))).to_be_enabled(timeout=60_000)
    finally:
        stop_app(proc)


def test_served_on_every_interface_without_sign_in_it_refuses_to_act(tmp_path, page_factory):
    proc, url = start_app(tmp_path, options=["--server.address", "0.0.0.0"])
    try:
        assert "0.0.0.0" in _listening(int(url.rsplit(":", 1)[1]))
        page = page_factory()
        for path in ("/train", "/data", "/compare"):
            page.goto(url + path)
            expect(page.get_by_text("CNN Lab will not act here")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("CNN_LAB_TRUSTED_NETWORK=1")).to_be_visible()
            expect(page.get_by_test_id("stMain").get_by_role("button")).to_have_count(0)  # no launch, upload, delete
    finally:
        stop_app(proc)
    (tmp_path / "trusted").mkdir()
    trusted, url = start_app(
        tmp_path / "trusted", options=["--server.address", "0.0.0.0"], env={"CNN_LAB_TRUSTED_NETWORK": "1"}
    )
    try:
        page = page_factory()
        page.goto(url + "/data")
        expect(page.get_by_text("Shared workspace")).to_be_visible(timeout=60_000)
        expect(page.get_by_label("…or a folder on this machine")).to_have_count(0)  # no server paths
        expect(page.get_by_role("button", name="Add dataset")).to_be_visible()
    finally:
        stop_app(trusted)


@pytest.fixture
def page_factory(browser):
    contexts = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        return page

    yield make
    for context in contexts:
        context.close()


def test_a_listening_socket_reader_sees_this_process(tmp_path):
    """The reader above is right about a socket this test opens itself (so its answers can be trusted)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert _listening(s.getsockname()[1]) == {"127.0.0.1"}
