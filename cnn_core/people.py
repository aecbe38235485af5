"""Who is acting: the local owner (the CLI, a loopback app without sign-in) or a signed-in person.

Every run, sweep and dataset has an owner (a person's ``id``). A person sees their own items, the shared ones
and (an administrator) everyone's; they change only their own, an administrator anything. An item someone may
not see is answered exactly like a missing one, so its id tells a stranger nothing.

- ``CNN_LAB_ADMINS``: administrators' e-mail addresses, comma-separated (case does not matter).
- ``CNN_LAB_USER``: the CLI acts as this e-mail address instead of the local owner (a shell account on a shared
  machine); an administrator only if listed in ``CNN_LAB_ADMINS``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cnn_core.safetext import escape_controls

LOCAL_ID = "local"  # the owner of everything made without sign-in; no e-mail address can be this


@dataclass(frozen=True)
class Person:
    """Someone acting on the lab: ``id`` is what items record as their owner."""

    id: str
    name: str
    admin: bool = False
    email: str | None = None

    @property
    def local(self) -> bool:
        return self.id == LOCAL_ID

    def may_see(self, owner: str, shared: bool) -> bool:
        return shared or self.admin or owner == self.id

    def may_change(self, owner: str) -> bool:
        return self.admin or owner == self.id


LOCAL = Person(LOCAL_ID, "local user", admin=True)  # one person at the machine: today's single-user lab
# Everyone on a network the operator trusts (``CNN_LAB_TRUSTED_NETWORK=1``, no sign-in): one shared workspace,
# the local owner's, with a visitor's limits (quotas apply, no server folders).
SHARED_WORKSPACE = Person(LOCAL_ID, "shared workspace", admin=False)


def admin_emails() -> frozenset[str]:
    return frozenset(e.strip().lower() for e in os.environ.get("CNN_LAB_ADMINS", "").split(",") if e.strip())


def from_claims(claims: Mapping[str, object]) -> Person:
    """A signed-in person from their OpenID Connect claims: known by e-mail when the provider gives one (as
    administrators are listed), else by the provider's subject id."""
    email = str(claims.get("email") or "").strip().lower() or None
    sub = str(claims.get("sub") or "").strip()
    if claims.get("email_verified") is False:  # a provider that says it did not check the address: not an identity
        email = None
    if not email and not sub:
        raise ValueError("the sign-in gave neither an e-mail address nor a subject id")
    person_id = email or f"sub:{sub}"
    name = str(claims.get("name") or email or sub)
    return Person(escape_controls(person_id)[:200], escape_controls(name)[:100], person_id in admin_emails(), email)


def cli_person() -> Person:
    """Who the CLI acts as: ``CNN_LAB_USER`` when set, else the local owner."""
    email = os.environ.get("CNN_LAB_USER", "").strip()
    return from_claims({"email": email}) if email else LOCAL


def owner_label(owner: str) -> str:
    """An owner as shown to administrators."""
    return "local user" if owner == LOCAL_ID else escape_controls(owner.removeprefix("sub:"))
