"""A Ray cluster that is not any driver's own, for tests and benchmarks: ``ray start --head --block`` in its own
process on a free loopback port, stopped by its PID (never ``ray stop``, which ends every Ray on the machine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.serve import free_port
from tests.polling import wait_until


@contextmanager
def ray_head(log_dir: Path, num_cpus: int = 2) -> Iterator[str]:
    """Start the head, yield its address (``127.0.0.1:PORT``), stop it."""
    port = free_port()
    log_path = log_dir / "head.log"
    # Its own temp dir (short: Ray's socket paths must stay under 108 bytes), so the address file it leaves
    # behind is not /tmp/ray's, which other Ray users on this machine read.
    temp_dir = tempfile.mkdtemp(prefix="cnnlab-ray-", dir="/tmp")
    # No token authentication on this throwaway local cluster (Ray 2.60 turns it on by default for `ray start`).
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["ray", "start", "--head", f"--port={port}", f"--num-cpus={num_cpus}", "--num-gpus=0", "--block"]
            + ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    try:
        wait_until(lambda: "Ray runtime started" in log_path.read_text() or proc.poll() is not None, 60, "the Ray head")
        assert proc.poll() is None, log_path.read_text()[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()  # by its PID: `ray start --block` ends the processes it started
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def cluster_node_ids(address: str) -> set[str]:
    """The cluster's nodes, as Ray itself reports them."""
    import ray

    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        return {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()
