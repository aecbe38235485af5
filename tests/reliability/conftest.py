"""The reliability suite's tools: the real CLI in a subprocess, snapshots of a folder tree, and small real inputs.

Nothing here mocks the product: every CLI case runs ``python -m cnn_core`` in its own process with a private
run store (``CNN_LAB_RUNS``), a private ``HOME`` and a private working folder, all under the test's
``tmp_path``, so a snapshot of ``tmp_path`` taken before and after shows everything a command changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from cnn_core.config import RunConfig, TrainConfig
from cnn_core.data import IDX_STEMS, Dataset, write_idx

# The store's own database files: a refused command may create an empty store, but nothing else.
STORE_FILES = ("runs", "runs/runs.db", "runs/runs.db-wal", "runs/runs.db-shm", "runs/runs.db-journal")


def snapshot(root: Path, ignore: Callable[[str], bool] = lambda rel: False) -> dict[str, tuple]:
    """Every entry below ``root``: type, and for files size, mtime and SHA-256 (folders' mtimes are left out:
    SQLite creates and deletes its -wal/-shm files beside the database on every read)."""
    entries: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if ignore(rel):
                continue
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                entries[rel] = ("dir",)
            elif stat.S_ISLNK(info.st_mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if info.st_size < 8 << 20 else None
                entries[rel] = ("file", info.st_size, info.st_mtime_ns, digest)
            else:  # a FIFO or a socket: never opened (a FIFO would block)
                entries[rel] = ("special", stat.S_IFMT(info.st_mode))
    return entries


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> dict[str, list[str]]:
    """What differs between two snapshots, for an assertion message that names the paths."""
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in set(before) & set(after) if before[k] != after[k]),
    }


def under(*prefixes: str) -> Callable[[str], bool]:
    """An ``ignore`` for ``snapshot``: the given paths and everything below them."""
    return lambda rel: any(rel == p or rel.startswith(p + "/") for p in prefixes)


def error_line(out: subprocess.CompletedProcess) -> str:
    """The one line a refused command prints: stderr must be exactly ``error: ...`` and nothing else."""
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{out.stderr}"
    assert lines[0].startswith("error: "), out.stderr
    return lines[0]


def last_error(out: subprocess.CompletedProcess) -> str:
    """A command with a progress bar on stderr: no traceback, and its last line is the one error line."""
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    line = out.stderr.replace("\r", "\n").strip().splitlines()[-1]
    assert line.startswith("error: "), out.stderr[-1000:]
    return line


@dataclass
class Sandbox:
    """A private world for CLI runs: ``runs`` (the store), ``cwd`` and ``home`` under one ``root``."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    def environ(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "CNN_LAB_RUNS": str(self.runs),
            "CNN_LAB_DATA": str(self.root / "no-data-here"),
            "HOME": str(self.root / "home"),
            **self.env,
            **extra,
        }

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cnn_core", *args]

    def cli(self, *args: str, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args),
            cwd=self.cwd,
            env=self.environ(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def snapshot(self, ignore: Callable[[str], bool] = lambda rel: False) -> dict[str, tuple]:
        return snapshot(self.root, ignore)


def make_sandbox(root: Path) -> Sandbox:
    box = Sandbox(root)
    for folder in (box.cwd, box.root / "home"):
        folder.mkdir(parents=True)
    return box


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    return make_sandbox(tmp_path / "box")


def run_folders(runs: Path) -> list[str]:
    """Names of the run folders in a store (what a refused run must not add)."""
    from cnn_core.runs import RUN_ID

    return sorted(p.name for p in runs.iterdir() if RUN_ID.fullmatch(p.name)) if runs.is_dir() else []


# -- small real inputs -------------------------------------------------------------------------------------------


def write_idx_folder(folder: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """A --data-dir folder with the two training IDX files (no test files: the CLI holds a test split out)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{IDX_STEMS[0]}.gz", images)
    write_idx(folder / f"{IDX_STEMS[1]}.gz", labels)
    return folder


@pytest.fixture(scope="session")
def small_idx(tmp_path_factory, bundled: Dataset) -> Path:
    """300 real digits, 30 of each class, as an IDX folder: a CLI run on it takes a second per epoch."""
    images, labels = bundled.train_x[:, 0].numpy(), bundled.train_y.numpy()
    pick = np.concatenate([np.flatnonzero(labels == c)[:30] for c in range(10)])
    return write_idx_folder(tmp_path_factory.mktemp("small-idx"), images[pick], labels[pick])


def tiny_run_config(epochs: int = 1) -> RunConfig:
    return RunConfig(train=TrainConfig(epochs=epochs, batch_size=64, log_every=5))


@pytest.fixture(scope="session")
def finished_store(tmp_path_factory, small_data: Dataset) -> Path:
    """A real store with three finished runs, made once: completed (trained), stopped (cancelled), failed.

    Tests copy it (``copy_store``); nothing writes to this one after it is built.
    """
    from cnn_core.runs import RunStore
    from cnn_core.runs.runner import execute_run

    root = tmp_path_factory.mktemp("finished") / "runs"
    store = RunStore(root)
    trained = store.create(tiny_run_config(), dataset="mnist", name="alpha")
    execute_run(store, trained, data=small_data)
    cancelled = store.create(tiny_run_config(), dataset="mnist", name="beta")
    store.request_stop(cancelled)
    failed = store.create(tiny_run_config(), dataset="mnist", name="gamma", claim=True)
    store.fail(failed, "a failure recorded for the test")
    assert {r.name: r.status for r in store.list()} == {"alpha": "completed", "beta": "stopped", "gamma": "failed"}
    assert not list(root.glob("runs.db-*")), "every connection is closed: no WAL left beside the database"
    return root


def copy_store(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


# -- a real full disk --------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(kib)``: a folder on a tmpfs of that size, a real filesystem that fills up (ENOSPC), unmounted
    at the end. Skipped where this process may not mount (not root, or in a container without the capability)."""
    mounted: list[Path] = []

    def make(kib: int) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        out = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)], capture_output=True, text=True
        )
        if out.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here to fill up: {out.stderr.strip() or out.returncode}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)
