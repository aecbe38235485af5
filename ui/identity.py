"""Who is at the page: sign-in with Streamlit's own OpenID Connect support, and the safe-by-default gate.

- ``[auth]`` in ``.streamlit/secrets.toml`` (any OpenID Connect provider): everyone signs in; each person has
  their own workspace, administrators are listed in ``CNN_LAB_ADMINS``.
- No sign-in, served on loopback only (the default, ``.streamlit/config.toml``): one person at the machine, the
  local owner, as in a single-user lab.
- No sign-in, served beyond loopback: every page says why it will not act and how to fix it, unless the operator
  set ``CNN_LAB_TRUSTED_NETWORK=1`` (one shared workspace for everyone who can reach the server).
"""

import ipaddress
import os

import streamlit as st

from cnn_core.people import LOCAL, SHARED_WORKSPACE, Person, from_claims

REFUSAL = (
    "**CNN Lab will not act here:** it is served beyond this machine (`server.address` is "
    "`{address}`) and nobody signs in, so every visitor could read, change and delete everyone's runs and "
    "datasets. Configure sign-in (an `[auth]` section in `.streamlit/secrets.toml`, see README: *Serving a "
    "class or a team*), serve it on `127.0.0.1` only, or accept one shared workspace for everyone who can reach "
    "it with `CNN_LAB_TRUSTED_NETWORK=1`."
)


def sign_in_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all, or one Streamlit cannot parse (it says so in its log)
        return False


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def served_beyond_loopback() -> bool:
    """Whether this server can be reached from other machines: not bound to a loopback address, or this visitor
    came from elsewhere (a proxy on this machine forwards what it received)."""
    if not _loopback(st.get_option("server.address")):
        return True
    visitor = st.context.ip_address  # None when the browser is on this machine
    headers = st.context.headers
    forwarded = any(isinstance(headers.get(h), str) for h in ("X-Forwarded-For", "Forwarded", "X-Real-Ip"))
    return forwarded or (isinstance(visitor, str) and not _loopback(visitor))


def me() -> Person | None:
    """The person this session acts as; None when nobody may act (not signed in, or served unsafely)."""
    if sign_in_configured():
        return from_claims(st.user.to_dict()) if st.user.is_logged_in else None
    if not served_beyond_loopback():
        return LOCAL
    return SHARED_WORKSPACE if os.environ.get("CNN_LAB_TRUSTED_NETWORK") == "1" else None


def person() -> Person:
    """The person a page acts for (the gate in app.py has let them in); ends the page otherwise."""
    who = me()
    if who is None:
        st.stop()
    return who


def gate() -> Person:
    """app.py's first step on every page: the sign-in screen, the refusal, or the person with their line in
    the sidebar."""
    if sign_in_configured():
        if not st.user.is_logged_in:
            st.title("🧠 CNN Lab")
            st.markdown("Sign in to see your runs and datasets and to train your own.")
            if st.button("Sign in", type="primary", key="identity.sign_in"):
                st.login()
            st.stop()
        who = person()
        with st.sidebar:
            st.markdown(f"Signed in as **{who.email or who.name}**" + (" · administrator" if who.admin else ""))
            if st.button("Sign out", key="identity.sign_out"):
                st.logout()
        return who
    who = me()
    if who is None:
        st.error(REFUSAL.format(address=st.get_option("server.address") or "all interfaces"))
        st.stop()
    if who is SHARED_WORKSPACE:
        st.sidebar.caption("Shared workspace: everyone who reaches this server sees and changes the same runs.")
    return who
