"""A real `streamlit run app.py` on a free port and Debian's Chromium driven by Playwright.

Never `playwright install`: the browser is /usr/bin/chromium (apt-get install chromium). Without
it these tests skip, unless CNN_LAB_REQUIRE_BROWSER=1 (set by CI), where a missing browser fails.
"""

import os
from pathlib import Path

import pytest

from tests.e2e.serve import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect

    # A page's first render on a busy CI machine can take longer than Playwright's 5 s default;
    # an assertion whose text never appears still fails, only later.
    expect.set_options(timeout=20_000)
    if not Path(CHROMIUM).exists():
        if os.environ.get("CNN_LAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def app_runs_dir(tmp_path_factory):
    """The run store of the app the browser tests drive (a test may write runs or sweeps there first)."""
    return tmp_path_factory.mktemp("e2e-runs")


@pytest.fixture(scope="session")
def app_url(app_runs_dir):
    """Start the app once per session with its own run store; yields its base URL."""
    try:
        proc, url = start_app(app_runs_dir)
    except RuntimeError as err:
        pytest.fail(str(err))
    yield url
    stop_app(proc)


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    """`oidc-provider-mock` on loopback offering alice, bob and teacher @example.com (tests/e2e/oidc.py)."""
    from tests.e2e.oidc import running_oidc_provider

    with running_oidc_provider(tmp_path_factory.mktemp("oidc")) as provider:
        yield provider
