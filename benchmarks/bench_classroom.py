"""A class in the shared lab: N people signed in (a real OpenID Connect provider on loopback) each launch one short
run at once from the Train page, while the health check is polled and the pages are used.

    python -m benchmarks.bench_classroom [--sessions 24] [--watch 20]

Reports, in one run: whether every run completed; each person's wait (launch to start) against their fair share,
(their round-robin position) x (one run's time) + 5 s; health-check p50/p95/max under the load; the pages' own
latencies (open, launch to the run shown, a control's rerun) p95. Goals: health max <= 1 s, nobody over their
fair share.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from benchmarks.classroom_load import WATCHER_JS, HealthPoller, Latencies, _chromium, _launch_all, _open_all, _reruns
from cnn_core.runs import ACTIVE, RunStore, Status
from tests.e2e.oidc import OidcUser, running_oidc_provider, sign_in, start_app_with_sign_in
from tests.e2e.serve import CHROMIUM_ARGS, stop_app

SLACK_S = 5.0  # the fair-share goal's allowance: a run's start is noticed within a poll, its worker is warm


def fair_share(store: RunStore) -> list[tuple[str, float, float]]:
    """(person, wait, fair share) per run, in launch order. A run's fair share is the time the runs launched
    before it took to train (its round-robin position x one run's time, with each run's own time: a run takes
    0.3 s on a quiet machine and 20 s beside a class's browsers) plus ``SLACK_S``."""
    runs = sorted((r for r in store.list() if r.started and r.ended), key=lambda r: r.created)
    shares, ahead = [], 0.0
    for run in runs:
        shares.append((run.owner, run.started - run.created, ahead + SLACK_S))
        ahead += run.ended - run.started
    return shares


def queue_gaps(store: RunStore) -> list[float]:
    """Seconds between one run's end and the next one's start: what the queue itself costs."""
    runs = sorted((r for r in store.list() if r.started and r.ended), key=lambda r: r.started)
    return [later.started - earlier.ended for earlier, later in zip(runs, runs[1:], strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=24)
    parser.add_argument("--watch", type=float, default=20.0, help="seconds of page use while the runs train")
    args = parser.parse_args()
    people = tuple(OidcUser(f"student{i:02d}@example.com", f"Student {i}") for i in range(args.sessions))
    folder = Path(tempfile.mkdtemp(prefix="bench-classroom-"))
    runs_dir = folder / "runs"
    runs_dir.mkdir()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with running_oidc_provider(folder, users=people) as provider:
        proc, url = start_app_with_sign_in(runs_dir, provider)
        store = RunStore(runs_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=_chromium(19), args=CHROMIUM_ARGS)
                pages = []
                began = time.perf_counter()
                for person in people:  # one after another, as a class arrives
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    context.add_init_script(WATCHER_JS)
                    page = context.new_page()
                    page.set_default_timeout(120_000)
                    sign_in(page, url, person.email)
                    pages.append(page)
                print(f"{len(people)} people signed in at the provider in {time.perf_counter() - began:.0f} s")
                interactions, failures = {}, []
                with HealthPoller(url) as health:
                    health.phase = "open"
                    interactions["open"], failed = _open_all(pages, url + "/train", 120)
                    failures += failed
                    health.phase = "launch"
                    interactions["launch"], failed = _launch_all(pages, 120)
                    failures += failed
                    health.phase = "watch"
                    interactions["rerun"], failed = _reruns(pages, args.watch, 2.0, 120)
                    failures += failed
                    deadline = time.monotonic() + 60 * args.sessions
                    while store.list(status=ACTIVE) and time.monotonic() < deadline:
                        time.sleep(0.5)
                browser.close()
            runs = store.list()
            completed = sum(r.status == Status.COMPLETED for r in runs)
            print(f"runs: {completed} of {len(runs)} completed ({len({r.owner for r in runs})} people)")
            shares = fair_share(store)
            worst = max(shares, key=lambda s: s[1] - s[2])
            over = [s for s in shares if s[1] > s[2]]
            waits = [s[1] for s in shares]
            print(
                f"waits: median {statistics.median(waits):.1f} s, longest {max(waits):.1f} s; "
                f"worst against its fair share: {worst[1]:.1f} s of {worst[2]:.1f} s ({worst[0]}); "
                f"{len(over)} over (goal: none)"
            )
            gaps = queue_gaps(store)
            if gaps:
                print(
                    f"queue: a run starts {statistics.median(gaps):.2f} s (median), {max(gaps):.2f} s (max) after "
                    "the one before it ended"
                )
            under_load = health.latencies(("open", "launch", "watch"))
            print(f"health check under load: {under_load} (goal: max <= 1000 ms)")
            for phase in ("open", "launch", "watch"):
                print(f"  {phase:<7} {health.latencies((phase,))}")
            for name, values in interactions.items():
                print(f"page {name:<7} {Latencies.of(values)}")
            for why in failures + health.failures:
                print(f"failure: {why}")
            print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            for run in store.list(status=ACTIVE):
                store.request_stop(run.id)
            stop_app(proc)


if __name__ == "__main__":
    main()
