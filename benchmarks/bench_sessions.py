"""How promptly `streamlit run app.py` answers its health check while many browser sessions connect.

    python -m benchmarks.bench_sessions [--sessions 20] [--page /]

Starts the app on a free port with an empty run store, measures the health endpoint's latency idle, then
opens N Chromium tabs at once (each a Streamlit session running the page) and keeps polling the health
endpoint every 100 ms until every tab has drawn its page. Prints the latency percentiles of both phases,
the time until all tabs were drawn, and the ratio of the worst latency under load to the idle median.
"""

import argparse
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e.serve import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app


def poll_health(url: str, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=30).read()
            out.append(time.perf_counter() - start)
        except OSError:
            out.append(float("inf"))
        time.sleep(0.1)


def summary(label: str, values: list[float]) -> None:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(
        f"{label:<22} n={len(ms):>3}  median {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  max {ms[-1]:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--page", default="/")
    args = parser.parse_args()
    proc, url = start_app(Path(tempfile.mkdtemp(prefix="bench-sessions-")))
    try:
        idle: list[float] = []
        stop = threading.Event()
        poller = threading.Thread(target=poll_health, args=(url, stop, idle))
        poller.start()
        time.sleep(3)
        stop.set()
        poller.join()
        loaded: list[float] = []
        stop = threading.Event()
        poller = threading.Thread(target=poll_health, args=(url, stop, loaded))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = [browser.new_context().new_page() for _ in range(args.sessions)]
            poller.start()
            start = time.perf_counter()
            for page in pages:  # all sessions connect at once: navigation does not wait for the page
                page.goto(url + args.page, wait_until="commit")
            for page in pages:
                page.locator("h1").first.wait_for(timeout=120_000)
            drawn = time.perf_counter() - start
            time.sleep(1)
            stop.set()
            poller.join()
            browser.close()
        print(f"{args.sessions} sessions opening {args.page}: all drawn after {drawn:.1f} s")
        summary("health, idle", idle)
        summary("health, sessions open", loaded)
        print(f"worst health latency under load / idle median: {max(loaded) / statistics.median(idle):.1f}")
    finally:
        stop_app(proc)


if __name__ == "__main__":
    main()
