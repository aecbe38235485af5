"""How often a page's live view of runs polls the run store (its ``st.fragment(run_every=...)``).

Every poll is a fragment rerun, and Streamlit starts each rerun's script thread from the server's event loop,
which waits there until the new thread gets the GIL. With a class on the Train page every session polled every
second while any run of the class was active, so the event loop spent seconds waiting behind the other
sessions' script threads and the health check with it (docs/BENCHMARKS.md). A session polls every second only
while the run it shows can change; while only other runs are active it looks every few seconds, enough to
notice one start or end (its labels and the run table follow then).

Between a Launch and the run's first point the session looks four times a second, so the point is shown within a
quarter of a second of the worker storing it rather than up to a second later. That lasts only while the run shown
has no metric row yet and is training or starts within a couple of seconds (first in line with a free slot): a
fraction of a second with warm workers, a few with a fresh process. In a class only the run training and the one
next in line are in that state at a time, so a few sessions at most poll that fast. When the first point comes the
page redraws once (``run_every`` is fixed when the fragment is drawn) and goes back to once a second.
"""

from cnn_core.jobs import JobManager
from cnn_core.jobs.fair import Wait
from cnn_core.runs import Status

FIRST_POINT_SECONDS = 0.25  # the run shown is about to draw its first point: show it as soon as it is stored
LIVE_SECONDS = 1.0  # the run shown is queued or training: its progress and curves move
OTHERS_SECONDS = 5.0  # only other runs are active: wait for one to start or end
STARTS_SOON_SECONDS = 2.0  # a queued run first in line whose start the queue expects within this is starting


def poll_every(shown: str | None, active: set[str], starting: bool = False) -> float | None:
    """Seconds between polls of a live view showing run ``shown`` while the runs ``active`` are queued or
    training; None (no polling at all) when none is. ``starting``: the run shown is about to draw its first
    point (``awaits_first_point``)."""
    if not active:
        return None
    if shown not in active:
        return OTHERS_SECONDS
    return FIRST_POINT_SECONDS if starting else LIVE_SECONDS


def awaits_first_point(status: Status, has_metric: bool, wait: Wait | None) -> bool:
    """Whether a run with ``status`` is about to draw its first point: no metric row yet, and a worker has it
    or it is first in line and the queue expects it to start within ``STARTS_SOON_SECONDS`` (``wait``: its
    place in the queue, None when it is not queued)."""
    if has_metric or not status.active:
        return False
    if status is Status.RUNNING:
        return True
    return wait is not None and wait.position == 1 and wait.seconds is not None and wait.seconds <= STARTS_SOON_SECONDS


def starting(manager: JobManager, run_id: str) -> bool:
    """``awaits_first_point`` for run ``run_id``, read from ``manager``'s store (and its queue while queued)."""
    status = manager.store.get(run_id).status
    has_metric = manager.store.last_metric(run_id) is not None
    wait = manager.wait_of(run_id) if status is Status.QUEUED and not has_metric else None
    return awaits_first_point(status, has_metric, wait)
