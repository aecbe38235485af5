"""Unpack a stranger's ``.zip`` of class folders without letting it escape, explode or smuggle links.

Everything is checked before the first byte is written: the number of members and their declared total
size are capped, and a member whose name climbs out (``../``), is absolute or names a drive refuses the whole
zip. Symbolic links, devices and encrypted members are skipped and listed; only image files are written,
each streamed with its bytes counted, so a member that inflates past what it declared is caught mid-way
(a zip bomb lying in its header). The caller extracts into a fresh staging folder and deletes it on any
failure, so a failed upload leaves nothing behind.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

from cnn_core.config.budget import human_bytes
from cnn_core.data.folders import IGNORED_NAMES, IMAGE_EXTENSIONS, MAX_IMAGES
from cnn_core.errors import BadDataset
from cnn_core.safetext import escape_skipped

MAX_MEMBERS = MAX_IMAGES + 2_000  # images plus the folders that hold them and a few stray files
MAX_UNPACKED_BYTES = 2 << 30  # 2 GiB: 40,000 phone photos would be more, and this lab shrinks them to 64×64
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe(name: str) -> bool:
    """A member name that would land outside the folder it is extracted into."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in parts or "\x00" in name


def _kind(info: zipfile.ZipInfo) -> str | None:
    """Why a member is skipped, or None for a plain file or folder."""
    mode = info.external_attr >> 16  # Unix permissions and file type, when a Unix tool made the zip
    if stat.S_ISLNK(mode):
        return "a symbolic link (not extracted)"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: only permissions were recorded
        return "a device or special file (not extracted)"
    if info.flag_bits & 0x1:
        return "encrypted (not extracted)"
    return None


def _member_path(name: str) -> str:
    """A member's path without ``.`` and empty segments: ``zip -r x.zip ./`` names its members ``./a/0.png``
    (``..`` never gets here: ``_unsafe`` refused the zip)."""
    return "/".join(part for part in name.replace("\\", "/").split("/") if part not in ("", "."))


def _ignored(name: str) -> bool:
    return any(part.startswith(".") or part in IGNORED_NAMES for part in name.replace("\\", "/").split("/"))


def extract_zip(source: str | os.PathLike[str] | bytes | BinaryIO, dest: Path) -> list[tuple[str, str]]:
    """Extract a zip's image files into the empty folder ``dest``; returns the skipped members and why."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise BadDataset(f"not a readable zip file ({err})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise BadDataset(f"the zip holds {len(infos):,} entries; at most {MAX_MEMBERS:,} are accepted")
        declared = sum(i.file_size for i in infos)
        if declared > MAX_UNPACKED_BYTES:
            raise BadDataset(
                f"the zip unpacks to {human_bytes(declared)}; at most {human_bytes(MAX_UNPACKED_BYTES)} is accepted"
            )
        for info in infos:
            if _unsafe(info.filename):
                raise BadDataset(f"zip member {info.filename[:80]!r} points outside its folder; the zip was refused")
        return _extract_members(archive, infos, dest)


def _extract_members(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest: Path) -> list[tuple[str, str]]:
    skipped: list[tuple[str, str]] = []
    budget = MAX_UNPACKED_BYTES
    root = dest.resolve()
    for info in infos:
        name = _member_path(info.filename)
        if not name or _ignored(name) or info.is_dir():
            continue
        why = _kind(info) or (
            None if Path(name).suffix.lower() in IMAGE_EXTENSIONS else f"unsupported file type {Path(name).suffix}"
        )
        if why:
            skipped.append((name, why))
            continue
        target = root / name
        if not target.resolve().is_relative_to(root):  # belt and braces after _unsafe
            raise BadDataset(f"zip member {name[:80]!r} points outside its folder; the zip was refused")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            budget -= _copy_member(archive, info, target, budget)
        except FileExistsError:
            skipped.append((name, "a second member with the same name"))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, OSError) as err:
            raise BadDataset(f"zip member {name[:80]!r} cannot be extracted ({err})") from None
    return escape_skipped(skipped)  # member names are the zip maker's: shown, never obeyed


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Stream one member to ``target``; refuses one that inflates past its declared size or the budget."""
    written = 0
    with archive.open(info) as src, open(target, "xb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > info.file_size or written > budget:
                raise BadDataset(f"zip member {info.filename[:80]!r} inflates past its declared size (a zip bomb?)")
            out.write(chunk)
    return written
