"""The tests' one way to wait for something outside them (a worker, a store, a Ray cluster): poll until true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 120.0, what: str = "the condition", interval: float = 0.2) -> T:
    """``check()``'s first truthy value, polled every ``interval`` s; ``AssertionError`` naming ``what`` after
    ``timeout`` s. A ``check`` may itself raise (an assertion that a process is still alive) to fail early."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        time.sleep(interval)
