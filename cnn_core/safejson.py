"""JSON from files a user gave (configs, checkpoint metadata), refused before parsing when it is too big or too deep.

Python's ``json`` parser recurses once per nesting level, so ``[[[[...]]]]`` 100,000 deep blows the stack
(RecursionError) and a 2 GB file fills memory; both are checked on the raw text first.
"""

from __future__ import annotations

import json
from typing import Any

from cnn_core.errors import CnnLabError, InvalidConfig

MAX_JSON_BYTES = 1024 * 1024  # a run config is ~1 KB, a checkpoint's metadata ~2 KB
MAX_JSON_DEPTH = 32  # a run config nests 4 deep (model.conv[i].field)


def nesting_depth(text: str) -> int:
    """How deep ``[`` and ``{`` nest, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads(
    text: str | bytes,
    what: str,
    error: type[CnnLabError] = InvalidConfig,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """``json.loads`` for untrusted text; every failure is ``error`` with one line naming ``what``."""
    if len(text) > max_bytes:
        raise error(f"{what} is {len(text):,} bytes of JSON; at most {max_bytes:,} are accepted")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{what} is not UTF-8 text") from None
    depth = nesting_depth(text)
    if depth > max_depth:
        raise error(f"{what} nests {depth} levels deep; at most {max_depth} are accepted")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{what} is not valid JSON: {err.msg} at line {err.lineno}") from None
    except ValueError as err:  # an integer of more than 4,300 digits (Python's int-from-text limit)
        raise error(f"{what} holds a number too long to read: {str(err).split(';')[0]}") from None
