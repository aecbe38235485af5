"""Real browser and a real OIDC provider: the sign-in helpers of tests/e2e/oidc.py drive Streamlit's own
`st.login` / `st.logout` (a throwaway script, not the app), two people at once, each in their own browser."""

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.oidc import sign_in, sign_out, start_app_with_sign_in
from tests.e2e.serve import stop_app

pytestmark = pytest.mark.slow

SCRIPT = """
import streamlit as st

if st.user.is_logged_in:
    st.write(f"Signed in as {st.user.email}")
    if st.button("Sign out"):
        st.logout()
elif st.button("Sign in"):
    st.login()
"""


@pytest.fixture
def auth_app_url(tmp_path, oidc_provider):
    script = tmp_path / "sign_in_app.py"
    script.write_text(SCRIPT)
    proc, url = start_app_with_sign_in(tmp_path, oidc_provider, script=script)
    yield url
    stop_app(proc)


def _signed_in_page(browser, app_url: str, email: str) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(30_000)
    page.goto(app_url)
    sign_in(page, app_url, email)
    return page


def test_two_people_sign_in_at_once_each_sees_their_own_email_and_sign_out_offers_sign_in_again(browser, auth_app_url):
    alice = _signed_in_page(browser, auth_app_url, "alice@example.com")
    bob = _signed_in_page(browser, auth_app_url, "bob@example.com")
    try:
        expect(alice.get_by_text("Signed in as alice@example.com")).to_be_visible()
        expect(bob.get_by_text("Signed in as bob@example.com")).to_be_visible()
        alice.reload()  # the identity is the browser's cookie, not the last sign-in on the server
        expect(alice.get_by_text("Signed in as alice@example.com")).to_be_visible()

        sign_out(alice)
        expect(alice.get_by_role("button", name="Sign in")).to_be_visible()
        expect(alice.get_by_text("Signed in as")).to_have_count(0)
        bob.reload()
        expect(bob.get_by_text("Signed in as bob@example.com")).to_be_visible()
    finally:
        alice.context.close()
        bob.context.close()
