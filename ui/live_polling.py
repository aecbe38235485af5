"""How often a page's live view of runs polls the run store (its ``st.fragment(run_every=...)``).

Every poll is a fragment rerun, and Streamlit starts each rerun's script thread from the server's event loop,
which waits there until the new thread gets the GIL. With a class on the Train page every session polled every
second while any run of the class was active, so the event loop spent seconds waiting behind the other
sessions' script threads and the health check with it (docs/BENCHMARKS.md). A session polls every second only
while the run it shows can change; while only other runs are active it looks every few seconds, enough to
notice one start or end (its labels and the run table follow then).
"""

LIVE_SECONDS = 1.0  # the run shown is queued or training: its progress and curves move
OTHERS_SECONDS = 5.0  # only other runs are active: wait for one to start or end


def poll_every(shown: str | None, active: set[str]) -> float | None:
    """Seconds between polls of a live view showing run ``shown`` while the runs ``active`` are queued or
    training; None (no polling at all) when none is."""
    if not active:
        return None
    return LIVE_SECONDS if shown in active else OTHERS_SECONDS
