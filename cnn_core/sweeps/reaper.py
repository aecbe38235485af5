"""The embedded Ray's processes end with their sweep driver, even when it is killed with SIGKILL.

Ray fate-shares its GCS and raylet with the driver that started them, but the raylet's two agents
(``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) first try to report the raylet's death to the GCS, which is
dead too, and wait out a 60-second timeout (Ray 2.60, ``ray/_private/process_watcher.py``). A driver killed by
SIGKILL cannot clean up after itself, so at start it leaves this small watcher in a session of its own:
``python -m cnn_core.sweeps.reaper DRIVER_PID RUNS_DIR SWEEP_ID``. While the driver lives it notes the driver's
descendants twice a second (so a signal during ``ray.init`` leaks nothing either); once it is gone, it kills those
still alive (by PID and start time: never a reused PID), and records on the sweep, should the driver have left it
running and nobody have resumed it since, that its driver ended without saying why, with the last error Ray's
core logged for it (a driver that Ray's C++ core ends, or a SIGKILL, runs no Python at all).
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


def start_reaper(driver_pid: int, runs_dir: str | os.PathLike[str], sweep_id: str) -> subprocess.Popen[bytes] | None:
    """Watch ``driver_pid``'s processes (Ray's, as they come: start it before ``ray.init``) and its sweep."""
    if not Path("/proc").is_dir():  # Linux only: elsewhere Ray's own timeouts apply
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "cnn_core.sweeps.reaper", str(driver_pid), os.fspath(runs_dir), sweep_id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a kill of the driver's process group does not reach it
    )


def watch(driver_pid: int) -> tuple[list[int], str | None]:
    """Note the driver's descendants while it lives, then kill what is left of them once it is gone; the PIDs
    killed, and the last error Ray's core logged in the driver."""
    driver_started, seen = start_time(driver_pid), {}
    while driver_started is not None and start_time(driver_pid) == driver_started:
        seen.update({pid: started for pid in descendants(driver_pid) if (started := start_time(pid)) is not None})
        seen.pop(os.getpid(), None)
        time.sleep(POLL_SECONDS)
    logs = ray_log_dir(list(seen))
    last_words = ray_error(logs, driver_pid) if logs else None
    time.sleep(GRACE_SECONDS)
    killed = []
    for pid, started in seen.items():
        if start_time(pid) == started:  # the same process, not a reused PID
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                continue
    return killed, last_words


def record_end(runs_dir: str, sweep_id: str, driver_pid: int, ray_said: str | None, watched_since: float) -> None:
    """Mark a sweep its driver left active as ended, saying so (nothing changes for a sweep that ended, nor for
    one resumed since: queued again, or started after ``watched_since`` by another driver, which it is now)."""
    from cnn_core.runs import RunStore
    from cnn_core.safetext import escape_controls

    store = RunStore(runs_dir)
    started = store.sweeps.get(sweep_id).started
    if started is None or started > watched_since:
        return
    said = f"; Ray's core logged: {escape_controls(ray_said)[:300]}" if ray_said else ""
    store.sweeps.interrupt(
        sweep_id,
        f"the sweep's driver (pid {driver_pid}) ended without recording why (a SIGKILL, the out-of-memory killer or "
        f"Ray's core ending it){said}; finished trials are kept, resume it to finish the rest",
    )


def ray_log_dir(pids: list[int]) -> Path | None:
    """The Ray session's log folder, from its processes' command lines (``--log_dir=...``)."""
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in args:
            if arg.startswith((b"--log_dir=", b"--log-dir=")):
                return Path(os.fsdecode(arg.partition(b"=")[2]))
    return None


def ray_error(logs: Path, driver_pid: int) -> str | None:
    """The last error or fatal line Ray's core logged in the driver process (``[time E pid tid] file:line: ...``)."""
    for path in logs.glob(f"python-core-driver-*_{driver_pid}.log"):
        try:
            lines = path.read_text(errors="replace").splitlines()[-2000:]
        except OSError:
            return None
        errors = [line for line in lines if " E " in line[:40] or " F " in line[:40]]
        return errors[-1].split("] ", 1)[-1].strip() if errors else None
    return None


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


def main(argv: list[str]) -> None:
    driver_pid, runs_dir, sweep_id = int(argv[0]), argv[1], argv[2]
    watched_since = time.time()  # after the driver claimed the sweep: it starts this watcher once it has
    _killed, ray_said = watch(driver_pid)
    try:
        record_end(runs_dir, sweep_id, driver_pid, ray_said, watched_since)
    except Exception:  # a store that cannot be written: `cnn-lab sweeps` marks the sweep when it can
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
