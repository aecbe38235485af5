"""The embedded Ray's processes end with their sweep driver, even when it is killed with SIGKILL.

Ray fate-shares its GCS and raylet with the driver that started them, but the raylet's two agents
(``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) first try to report the raylet's death to the GCS, which is
dead too, and wait out a 60-second timeout (Ray 2.60, ``ray/_private/process_watcher.py``). A driver killed by
SIGKILL cannot clean up after itself, so at start it leaves this small watcher in a session of its own:
``python -m cnn_core.sweep.reaper DRIVER_PID PID:START_TIME ...``. It sleeps until the driver is gone, then kills
the listed processes that are still the same processes (same start time: never a reused PID).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
GRACE_SECONDS = 2.0  # Ray's own fate-sharing ends the GCS, the raylet and the workers within this


def start_reaper(driver_pid: int) -> subprocess.Popen | None:
    """Watch ``driver_pid``'s Ray processes (its descendants, as they are once ``ray.init`` returned)."""
    listed = [f"{pid}:{started}" for pid in descendants(driver_pid) if (started := start_time(pid)) is not None]
    if not listed or not Path("/proc").is_dir():  # Linux only: elsewhere Ray's own timeouts apply
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "cnn_core.sweep.reaper", str(driver_pid), *listed],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a kill of the driver's process group does not reach it
    )


def watch(driver_pid: int, listed: list[str]) -> list[int]:
    """Wait for the driver to end, then kill what is left of the listed processes; the PIDs killed."""
    driver_started = start_time(driver_pid)
    while driver_started is not None and start_time(driver_pid) == driver_started:
        time.sleep(POLL_SECONDS)
    time.sleep(GRACE_SECONDS)
    killed = []
    for item in listed:
        pid, _, started = item.partition(":")
        if pid.isdigit() and start_time(int(pid)) == started:  # the same process, not a reused PID
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
            except OSError:
                continue
    return killed


def start_time(pid: int) -> str | None:
    """A live process's start time (clock ticks since boot, /proc/PID/stat's 22nd field); None once it is gone
    or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2:])
