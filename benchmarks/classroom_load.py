"""A class on one page of the app: N browser sessions open it (and launch a short run each) while the health
check is polled, so a blocked server event loop shows up as a slow ``/_stcore/health``.

    python -m benchmarks.classroom_load [--sessions 20] [--page /train] [--no-launch] [--watch 60] [--url URL]

Without ``--url`` the app is started on a free port with an empty run store and no dataset root, so the Train
page's default dataset is the bundled MNIST sample. From Python::

    from benchmarks.classroom_load import classroom_load
    result = classroom_load("http://127.0.0.1:8501", sessions=20, page="/train", launch=True)
    print(result.describe())

Phases, each with its own health-check latencies: ``idle`` (before any browser), ``open`` (every session opens
the page at once), ``launch`` (every session sets 1 epoch and clicks "🚀 Launch training" at once; the runs queue
behind one worker), ``watch`` (the runs train one after another while every Train page polls them; one
session at a time moves the "conv blocks" slider, a full rerun of its page).

Interaction latencies are taken in the page (``Date.now()``): ``open`` from the navigation to the page drawn
and its script idle; ``launch`` from the click to the run picker showing the new run; ``rerun`` from the arrow
key to the fourth conv block appearing (or going). Times are seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from cnn_core.runs import ACTIVE, RunStore
from tests.e2e.serve import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app

# Installed in every page before the app's own scripts: marks when the page was first drawn and idle, and the
# time from a click or key to an expected text appearing (or going). 20 ms ticks: finer than what is measured.
WATCHER_JS = """
(() => {
  const lab = (window.__lab = { drawnAt: null, t0: null, seenAt: null, want: null });
  const start = () => { if (lab.want && lab.t0 === null) lab.t0 = Date.now(); };
  document.addEventListener('keydown', start, true);
  document.addEventListener('click', start, true);
  const shown = (text) => document.body.textContent.includes(text)
    || [...document.querySelectorAll('input')].some((input) => input.value.includes(text));  // a picker's choice
  lab.expect = (text, present) => {
    lab.t0 = lab.seenAt = null;
    lab.want = () => shown(text) === present;
  };
  setInterval(() => {
    if (lab.drawnAt === null) {
      const app = document.querySelector('[data-testid="stApp"]');
      if (app && app.getAttribute('data-test-script-state') === 'notRunning' && document.querySelector('h1'))
        lab.drawnAt = Date.now();
    }
    if (lab.want && lab.t0 !== null && lab.seenAt === null && lab.want()) lab.seenAt = Date.now();
  }, 20);
})();
"""
PHASES = ("idle", "open", "launch", "watch")


@dataclass(frozen=True)
class Latencies:
    """Percentiles of some latencies, in seconds (``n`` = 0: none measured, every value 0)."""

    n: int
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Latencies:
        if not values:
            return cls(0, 0.0, 0.0, 0.0)
        ordered = sorted(values)
        return cls(len(ordered), statistics.median(ordered), ordered[round(0.95 * (len(ordered) - 1))], ordered[-1])

    def __str__(self) -> str:
        ms = f"p50 {1000 * self.p50:7.1f} ms  p95 {1000 * self.p95:7.1f} ms  max {1000 * self.max:7.1f} ms"
        return f"n={self.n:>4}  {ms}"


@dataclass(frozen=True)
class ClassroomResult:
    """What one classroom load measured: health-check latencies under load and per phase, and the pages' own."""

    sessions: int
    page: str
    health: Latencies  # every phase but idle
    health_by_phase: dict[str, Latencies]
    interactions: dict[str, Latencies]
    load_average: tuple[float, float, float]  # os.getloadavg() at the end
    failures: list[str] = field(default_factory=list)  # health checks that failed, pages that never answered
    worst_health: list[tuple[str, float, float]] = field(default_factory=list)  # (phase, at s, latency s)

    def describe(self) -> str:
        load = " ".join(f"{x:.2f}" for x in self.load_average)
        lines = [f"{self.sessions} sessions on {self.page}; load average {load}"]
        lines.append(f"  health, under load     {self.health}")
        lines += [f"  health, {phase:<14} {lat}" for phase, lat in self.health_by_phase.items()]
        lines += [f"  {name:<22} {lat}" for name, lat in self.interactions.items()]
        lines += [
            f"  slow health check: {1000 * s:.0f} ms at {at:.1f} s ({phase})" for phase, at, s in self.worst_health
        ]
        lines += [f"  failure: {why}" for why in self.failures]
        return "\n".join(lines)


# The poller, run by a Python of its own (``python -c``): one line per check, "wall-clock start, latency, error".
POLLER = """
import sys, time, urllib.request
url, interval, timeout, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), open(sys.argv[4], "a")
while True:
    began, start, error = time.time(), time.perf_counter(), ""
    try:
        urllib.request.urlopen(url, timeout=timeout).read()
    except OSError as err:
        error = repr(str(err))
    print(began, time.perf_counter() - start, error, file=out, flush=True)
    time.sleep(interval)
"""


class HealthPoller:
    """Asks ``/_stcore/health`` every ``interval`` seconds from a process of its own (so the browser driver in
    this one never delays a check); each latency is kept with the phase it was asked in (a failed or timed-out
    check counts as its time and is listed in ``failures``). Set ``phase`` as the load moves on."""

    def __init__(self, url: str, interval: float = 0.1, timeout: float = 30.0) -> None:
        self._args = [url + "/_stcore/health", str(interval), str(timeout)]
        self._phases = [(0.0, "idle")]  # (wall-clock time it began, phase)
        self.samples: list[tuple[str, float, float]] = []  # (phase, seconds since polling began, latency)
        self.failures: list[str] = []

    @property
    def phase(self) -> str:
        return self._phases[-1][1]

    @phase.setter
    def phase(self, name: str) -> None:
        self._phases.append((time.time(), name))

    def __enter__(self) -> HealthPoller:
        self._out = Path(tempfile.mkdtemp(prefix="classroom-health-")) / "checks.txt"
        self._process = subprocess.Popen([sys.executable, "-c", POLLER, *self._args, str(self._out)])
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.wait()
        lines = [line.split(" ", 2) for line in self._out.read_text().splitlines()]
        began = float(lines[0][0]) if lines else 0.0
        for at, latency, error in ((float(a), float(b), c) for a, b, c in lines):
            phase = next(name for start, name in reversed(self._phases) if start <= at)
            self.samples.append((phase, at - began, latency))
            if error:
                self.failures.append(f"health check in {phase}: {error}")

    def latencies(self, phases: tuple[str, ...]) -> Latencies:
        return Latencies.of([s for p, _, s in self.samples if p in phases])

    def worst(self, count: int = 5) -> list[tuple[str, float, float]]:
        """The slowest checks: (phase, seconds since polling began, latency)."""
        return sorted(self.samples, key=lambda sample: -sample[2])[:count]


def _mark(page: Page, timeout_s: float) -> float | None:
    """Seconds from the armed click/key to the expected text (None: it never came)."""
    try:
        page.wait_for_function("window.__lab.seenAt !== null", timeout=timeout_s * 1000, polling=50)
    except Exception:  # noqa: BLE001 - a timeout or a crashed page: counted as a failure by the caller
        return None
    t0, seen = page.evaluate("[window.__lab.t0, window.__lab.seenAt]")
    return float(seen - t0) / 1000


def _open_all(pages: list[Page], url: str, timeout_s: float) -> tuple[list[float], list[str]]:
    """Every page navigates at once (navigation does not wait for the app); seconds until each was drawn."""
    started = []
    for page in pages:
        started.append(time.time() * 1000)
        page.goto(url, wait_until="commit")
    times, failures = [], []
    for i, (page, t0) in enumerate(zip(pages, started, strict=True)):
        try:
            page.wait_for_function("window.__lab && window.__lab.drawnAt !== null", timeout=timeout_s * 1000)
            times.append((page.evaluate("window.__lab.drawnAt") - t0) / 1000)
        except Exception:  # noqa: BLE001
            failures.append(f"session {i} was not drawn within {timeout_s:.0f} s")
    return times, failures


def _launch_all(pages: list[Page], timeout_s: float) -> tuple[list[float], list[str]]:
    """Every page sets 1 epoch and a run name, then all click Launch at once; seconds from each click to the
    run picker showing that run (the page's "Queued" line may be gone by then: another session's launch
    reruns every Train page)."""
    for i, page in enumerate(pages):
        page.get_by_role("button", name=re.compile("Launch training")).wait_for(timeout=timeout_s * 1000)
        page.get_by_role("slider", name="epochs").first.focus()
        page.keyboard.press("Home")  # 1 epoch: a short run
        page.get_by_label("run name (optional)").fill(f"class-{i:02d}")
        page.get_by_label("run name (optional)").press("Enter")
    for page in pages:
        expect(page.get_by_role("slider", name="epochs").first).to_have_value("1", timeout=timeout_s * 1000)
    for i, page in enumerate(pages):
        page.evaluate(f"window.__lab.expect('class-{i:02d} · ', true)")
        page.get_by_role("button", name=re.compile("Launch training")).click(no_wait_after=True)
    times, failures = [], []
    for i, page in enumerate(pages):
        seconds = _mark(page, timeout_s)
        if seconds is None:
            failures.append(f"session {i}: its run was not shown within {timeout_s:.0f} s of its click")
        else:
            times.append(seconds)
    return times, failures


def _reruns(pages: list[Page], seconds: float, every_s: float, timeout_s: float) -> tuple[list[float], list[str]]:
    """For ``seconds``, one page after another moves "conv blocks" 3 → 4 → 3; seconds from key to the change."""
    times, failures, end, i = [], [], time.monotonic() + seconds, 0
    while time.monotonic() < end:
        page, more = pages[i % len(pages)], (i // len(pages)) % 2 == 0
        slider = page.get_by_role("slider", name="conv blocks").first
        slider.focus()
        page.evaluate(f"window.__lab.expect('conv4', {'true' if more else 'false'})")
        page.keyboard.press("ArrowRight" if more else "ArrowLeft")
        took = _mark(page, timeout_s)
        if took is None:
            failures.append(f"session {i % len(pages)}: the conv blocks slider got no answer within {timeout_s:.0f} s")
        else:
            times.append(took)
        i += 1
        time.sleep(max(0.0, every_s - (took or 0.0)))
    return times, failures


def _chromium(nice: int | None) -> str:
    """Chromium, or a wrapper that starts it at ``nice``: a class's browsers run on the students' own machines,
    so here, sharing the server's two cores, they should take only what the server leaves.

    Run as root, Chromium raises its own processes' priority again (renderers to nice 0, display threads to -8),
    so the wrapper also takes away its right to (``setpriv`` drops CAP_SYS_NICE)."""
    if not nice:
        return CHROMIUM
    command = f"nice -n {int(nice)} "
    if os.geteuid() == 0 and shutil.which("setpriv"):
        command += "setpriv --inh-caps=-sys_nice --bounding-set=-sys_nice "
    wrapper = Path(tempfile.mkdtemp(prefix="classroom-chromium-")) / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec {command}{shlex.quote(CHROMIUM)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def classroom_load(
    url: str,
    sessions: int = 20,
    page: str = "/train",
    launch: bool = True,
    watch_s: float = 30.0,
    interact_every_s: float = 2.0,
    health_interval_s: float = 0.1,
    idle_s: float = 3.0,
    timeout_s: float = 120.0,
    browser_nice: int | None = 19,
) -> ClassroomResult:
    """Open ``sessions`` pages (one Chromium, one context each) on ``url + page`` while the health check is
    polled; with ``launch`` (a Train page), each launches a 1-epoch run at once; then ``watch_s`` seconds of
    reruns (the "conv blocks" slider, a Train page only). The browser runs at ``browser_nice`` (None: as this
    process does). See the module docstring for what is measured."""
    interactions: dict[str, list[float]] = {}
    failures: list[str] = []
    with HealthPoller(url, health_interval_s) as health:
        time.sleep(idle_s)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(browser_nice), args=CHROMIUM_ARGS)
            pages = []
            for _ in range(sessions):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.add_init_script(WATCHER_JS)
                pages.append(context.new_page())
            health.phase = "open"
            interactions["open"], failed = _open_all(pages, url + page, timeout_s)
            failures += failed
            if launch:
                health.phase = "launch"
                interactions["launch"], failed = _launch_all(pages, timeout_s)
                failures += failed
            if watch_s > 0:
                health.phase = "watch"
                interactions["rerun"], failed = _reruns(pages, watch_s, interact_every_s, timeout_s)
                failures += failed
            browser.close()
    return ClassroomResult(
        sessions=sessions,
        page=page,
        health=health.latencies(PHASES[1:]),
        health_by_phase={phase: health.latencies((phase,)) for phase in PHASES},
        interactions={name: Latencies.of(values) for name, values in interactions.items()},
        load_average=os.getloadavg(),
        failures=failures + health.failures,
        worst_health=health.worst(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--page", default="/train")
    parser.add_argument("--no-launch", dest="launch", action="store_false")
    parser.add_argument("--watch", type=float, default=30.0, help="seconds of reruns after the launches (0: none)")
    parser.add_argument("--url", help="an app already running (default: start one with an empty run store)")
    args = parser.parse_args()
    watch = args.watch if args.page == "/train" else 0.0  # the rerun uses a Train page control
    if args.url:
        print(classroom_load(args.url, args.sessions, args.page, args.launch, watch).describe())
        return
    runs_dir = Path(tempfile.mkdtemp(prefix="classroom-"))
    proc, url = start_app(runs_dir)
    try:
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(classroom_load(url, args.sessions, args.page, args.launch, watch).describe())
    finally:
        store = RunStore(runs_dir)
        for run in store.list(status=ACTIVE):  # a worker outlives the app: stop the rest of the class's runs
            store.request_stop(run.id)
        stop_app(proc)


if __name__ == "__main__":
    main()
