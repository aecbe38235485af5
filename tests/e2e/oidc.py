"""Real OpenID Connect sign-in for the browser tests: `oidc-provider-mock` on loopback, the `[auth]` secrets that
point Streamlit's `st.login` at it, and Playwright steps that sign a person in and out through its forms.

The mock keeps its users in memory. Its authorize page asks for a *subject* (`sub`); the claims sent back are
those the user was given (`--user-claims` at start, or `PUT /users/{sub}` later). A subject it does not know
gets `{"email": sub}`, so an unknown e-mail would sign in under the wrong address: add people first.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.serve import free_port, start_app
from tests.polling import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

USER_COOKIE = "_streamlit_user"  # Streamlit's signed identity cookie, set by /oauth2callback


@dataclass(frozen=True)
class OidcUser:
    """A person the provider can sign in; the subject differs from the e-mail, as at a real provider, so an app
    that keys people on the wrong claim shows it."""

    email: str
    name: str

    @property
    def sub(self) -> str:
        return subject(self.email)

    def claims(self) -> dict[str, object]:
        return {"email": self.email, "email_verified": True, "name": self.name}


def subject(email: str) -> str:
    """The provider's `sub` for ``email`` (what sign_in types into the mock's form)."""
    return "sub-" + email


USERS = (
    OidcUser("alice@example.com", "Alice"),
    OidcUser("bob@example.com", "Bob"),
    OidcUser("teacher@example.com", "Teacher"),
)


@dataclass(frozen=True)
class OidcProvider:
    url: str  # http://127.0.0.1:PORT
    users: tuple[OidcUser, ...]

    @property
    def metadata_url(self) -> str:
        return self.url + "/.well-known/openid-configuration"

    def add_user(self, user: OidcUser) -> None:
        """Give (or replace) a person's claims while the provider runs: the mock's `PUT /users/{sub}`."""
        request = urllib.request.Request(
            f"{self.url}/users/{user.sub}",
            data=json.dumps(user.claims()).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204, f"PUT /users/{user.sub} answered {response.status}"


@contextmanager
def running_oidc_provider(log_dir: Path, users: tuple[OidcUser, ...] = USERS) -> Iterator[OidcProvider]:
    """`oidc-provider-mock` on a free loopback port with ``users``, once its discovery document answers;
    stopped by its PID at the end. Its log is ``log_dir/oidc-provider.log``."""
    port = free_port()
    log_path = log_dir / "oidc-provider.log"
    cmd = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)]
    for user in users:
        cmd += ["--user-claims", json.dumps({"sub": user.sub, **user.claims()})]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    provider = OidcProvider(url=f"http://127.0.0.1:{port}", users=users)
    try:
        wait_until(lambda: _answers(provider.metadata_url, proc, log_path), timeout=30, what="the OIDC provider")
        yield provider
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _answers(url: str, proc: subprocess.Popen, log_path: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"oidc-provider-mock exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def write_auth_secrets(folder: Path, provider: OidcProvider, app_port: int) -> Path:
    """A secrets.toml whose `[auth]` makes `st.login()` sign in at ``provider`` for an app on ``app_port``.

    The redirect URI's host must be the one the browser uses (127.0.0.1, not localhost): Streamlit keeps the
    login's state in a cookie of that host and finds it again only there. Client id and secret can be anything:
    the mock accepts every client."""
    path = folder / "secrets.toml"
    path.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(16)}"\n'
        'client_id = "cnn-lab-tests"\n'
        'client_secret = "not-a-secret"\n'
        f'server_metadata_url = "{provider.metadata_url}"\n'
    )
    return path


def start_app_with_sign_in(
    runs_dir: Path, provider: OidcProvider, script: str | Path = "app.py", env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """`start_app` whose `st.login()` signs in at ``provider`` (the secrets file lives in ``runs_dir``); ``env``:
    more environment variables (``CNN_LAB_ADMINS``, quotas)."""
    port = free_port()
    secrets_path = write_auth_secrets(runs_dir, provider, port)
    return start_app(runs_dir, script=script, port=port, options=["--secrets.files", str(secrets_path)], env=env)


def sign_in(page: Page, app_url: str, email: str, button: str = "Sign in") -> None:
    """From the app showing a button whose label contains ``button``, sign in at the provider as ``email`` and
    come back to the app, signed in (its identity cookie set)."""
    if not page.url.startswith(app_url):
        page.goto(app_url)
    page.get_by_role("button", name=button).click()
    page.wait_for_url(re.compile(r"/oauth2/authorize\?"))
    page.locator("input[name='sub']").fill(subject(email))
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(lambda url: url.startswith(app_url) and "/oauth2callback" not in url)
    if not _identity_cookie(page, app_url):
        raise AssertionError(f"signing in as {email} did not set {USER_COOKIE}: see the app's streamlit.log")


def sign_out(page: Page, button: str = "Sign out") -> None:
    """Click the app's ``button`` (it calls `st.logout()`), end the session at the provider, and come back to
    the app with its identity cookie gone."""
    app_url = _origin(page.url)
    page.get_by_role("button", name=button).click()
    page.wait_for_url(re.compile(r"/oauth2/end_session\b"))  # Streamlit sends the browser to end_session_endpoint
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(lambda url: url.startswith(app_url) and "/oauth2callback" not in url)
    if _identity_cookie(page, app_url):
        raise AssertionError(f"signing out left {USER_COOKIE} in the browser")


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _identity_cookie(page: Page, app_url: str) -> bool:
    return any(cookie["name"] == USER_COOKIE for cookie in page.context.cookies(app_url))
