"""Start `streamlit run app.py` on a free port (used by the browser tests and the job benchmark)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CNN_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(
    runs_dir: Path,
    timeout: float = 60,
    *,
    script: str | Path = "app.py",
    port: int | None = None,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """The app with its own run store (and no dataset root), once it answers its health check.

    ``script`` may be another Streamlit script (it still runs from the repository root, so the app's relative
    paths and ``.streamlit/config.toml`` hold); ``port`` is for a caller that must know it before the start
    (an OIDC ``redirect_uri``); ``options`` are more ``streamlit run`` flags (``["--secrets.files", path]``)
    and ``env`` more environment variables."""
    port = port or free_port()
    env = {
        **os.environ,
        "CNN_LAB_RUNS": str(runs_dir),
        "CNN_LAB_DATA": str(runs_dir / "no-data"),
        "CNN_LAB_DATASETS": str(runs_dir / "datasets"),
        **(env or {}),
    }
    log = open(runs_dir / "streamlit.log", "w")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        *options,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:  # an early exit (a taken port) fails at once
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("streamlit did not start: " + (runs_dir / "streamlit.log").read_text()[-2000:])


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
