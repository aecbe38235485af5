"""Text read from a user's files (folder and file names, zip members, checkpoint metadata, run names) made safe
to print: a terminal obeys escape sequences and a browser obeys right-to-left marks, so either could be made to
show something other than what is there. Like ``safejson`` for JSON, this is the one place for it."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence


def escape_controls(text: str) -> str:
    """A name as it is safe to print: control and format characters (ESC, BEL, RTL marks…) shown as ``\\x1b``."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)


def escape_skipped(skipped: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    """A list of (file name, why it was skipped) with both escaped: the reason may quote the name's suffix."""
    return [(escape_controls(name), escape_controls(why)) for name, why in skipped]
