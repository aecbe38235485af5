"""Work done once per app for a checkpoint (favourite images, projections, invariance curves), with a
progress bar the first time and none after.

``st.cache_data`` would replay a progress bar drawn inside the cached function on every hit; here the bar is
drawn only while the work runs. The results describe models, not users, so every session shares them
(``st.cache_resource``), in a small LRU so a long-lived app does not grow without bound.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import streamlit as st

KEEP = 24  # results kept; each is a few MB at most (10,000 images × 120 filters × 8 bytes)


@st.cache_resource
def _results() -> tuple[OrderedDict, threading.Lock]:
    return OrderedDict(), threading.Lock()


def cached(key: Hashable) -> Any | None:
    """The stored result for ``key``, or None when it has not been computed yet."""
    results, lock = _results()
    with lock:
        if key in results:
            results.move_to_end(key)
            return results[key]
    return None


def once(key: Hashable, compute: Callable[[Callable[[int, int], None]], Any], text: str) -> Any:
    """``compute(progress)`` the first time ``key`` is asked for (with a progress bar), the stored result after."""
    result = cached(key)
    if result is not None:
        return result
    bar = st.progress(0.0, text=text)
    try:
        result = compute(
            lambda done, total: bar.progress(min(done / max(total, 1), 1.0), text=f"{text} {done:,}/{total:,}")
        )
    finally:
        bar.empty()  # also when the work fails: the page shows the error, not a stuck bar
    results, lock = _results()
    with lock:
        results[key] = result
        while len(results) > KEEP:
            results.popitem(last=False)
    return result
