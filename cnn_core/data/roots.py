"""Folders on the server that the app may read (``CNN_LAB_FOLDER_ROOTS``), and who may ask.

Reading a folder on the server (the Data page's "folder on this machine", a run's ``data_dir``) is for
administrators, and only under the roots listed in ``CNN_LAB_FOLDER_ROOTS`` (separated by ``os.pathsep``, ``:`` on
Linux), checked on the real path, so a symbolic link out of a root is refused. Everyone else uploads a .zip. With
no roots set, only the local owner (the CLI, a loopback app without sign-in) may read folders, anywhere, as in a
single-user lab.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnn_core.errors import NotAllowed
from cnn_core.people import Person
from cnn_core.safetext import escape_controls

ZIP_INSTEAD = "upload a .zip of class folders instead"


def folder_roots() -> list[Path]:
    """The real paths of the folders listed in ``CNN_LAB_FOLDER_ROOTS``."""
    listed = [p.strip() for p in os.environ.get("CNN_LAB_FOLDER_ROOTS", "").split(os.pathsep) if p.strip()]
    return [Path(os.path.realpath(p)) for p in listed]


def may_read_folders(person: Person) -> bool:
    """Whether the page should offer ``person`` a server folder at all."""
    return person.admin and (bool(folder_roots()) or person.local)


def server_folder(path: str | os.PathLike[str], person: Person) -> Path:
    """``path`` as a real path ``person`` may read; ``NotAllowed`` with one line otherwise."""
    if not person.admin:
        raise NotAllowed(f"reading a folder on the server is for administrators: {ZIP_INSTEAD}")
    roots = folder_roots()
    real = Path(os.path.realpath(os.fspath(path)))
    if not roots:
        if person.local:
            return real
        raise NotAllowed(
            "no folders on the server are open to the app: set CNN_LAB_FOLDER_ROOTS to the folders it may read, "
            f"or {ZIP_INSTEAD}"
        )
    if any(real == root or real.is_relative_to(root) for root in roots):
        return real
    shown = escape_controls(os.fspath(path))[:200]
    raise NotAllowed(
        f"{shown} is outside the folders the app may read ({', '.join(map(str, roots))}); links out of them are "
        "not followed"
    )
