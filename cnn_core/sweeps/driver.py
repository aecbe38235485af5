"""The sweep driver: Ray Tune in its own process (Tune needs the main thread), never in Streamlit's.

``python -m cnn_core sweep-driver SWEEP_ID`` (started by the job manager) and ``python -m cnn_core sweep
SPEC.json`` (in the terminal) both end up in ``run_sweep``. With no address Ray starts embedded, with this
machine's CPUs and GPUs and no dashboard; with one (``--address``, ``RAY_ADDRESS`` or the Sweep page's field)
the driver joins that cluster and the trials run on its nodes. Tune's experiment state lives in the sweep's
folder under the runs directory unless ``--storage`` names another path or URI; a killed driver leaves the
sweep ``interrupted`` and ``--resume`` goes on from that state (``Tuner.restore``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ray.tune import Stopper

from cnn_core.config.sweep import SweepConfig
from cnn_core.errors import CnnLabError
from cnn_core.runs import ACTIVE, RunStore, Status, Sweep, SweepStatus
from cnn_core.sweeps.callback import LISTENERS, Progress, TrialRecorder
from cnn_core.sweeps.preflight import check_resources
from cnn_core.sweeps.reaper import start_reaper
from cnn_core.sweeps.space import plan, tune_space

if TYPE_CHECKING:
    from ray.tune import ResultGrid, Tuner
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import Searcher

EXPERIMENT = "tune"  # Tune's experiment folder name inside the storage path
STOP_POLL_SECONDS = 1.0
# Tune saves its experiment state at most this often; a killed driver loses at most this much of it.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no Tune tables on stdout: the CLI draws its own bar
# Tune snapshots its state whenever a trial has saved ``num_to_keep`` checkpoints, and warns when that is often;
# a LeNet trial's checkpoint is ~250 KB and a snapshot a few KB, so that is fine here.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


class _NoTraceback(logging.Filter):
    """Tune logs a failed trial with its traceback; its reason is recorded on the trial's run, and one line
    is enough in a terminal (tracebacks are for bugs in CNN Lab, not for a trial's bad data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            last = (str(record.exc_info[1]).strip().splitlines() or [""])[-1][:300]
            record.msg, record.args, record.exc_info = f"{record.getMessage()}: {last}", None, None
        return True


_NO_TRACEBACK = _NoTraceback()


def storage_of(store: RunStore, sweep: Sweep) -> str:
    """Where Tune keeps the sweep's experiment state: ``--storage``, else the sweep's folder."""
    return sweep.storage or str((store.sweeps.folder(sweep.id)).resolve())


def run_sweep(store: RunStore, sweep_id: str, on_progress: Callable[[Progress], None] | None = None) -> Sweep:
    """Run a claimed or queued sweep to its end, going on from Tune's saved state when there is one (a resumed
    sweep); returns the sweep as the store then has it."""
    sweep = store.sweeps.get(sweep_id)
    if sweep.status is SweepStatus.QUEUED and not store.sweeps.claim(sweep_id):
        return store.sweeps.get(sweep_id)
    if on_progress is not None:
        LISTENERS[sweep_id] = on_progress
    for handler in logging.getLogger("ray").handlers:  # what Ray and Tune print reaches the terminal here
        handler.addFilter(_NO_TRACEBACK)  # once: the same instance
    try:
        if not sweep.address:  # before Ray starts: its agents outlive a killed driver by a minute otherwise
            start_reaper(os.getpid(), store.root, sweep_id)
        cluster = start_ray(sweep.address)
        store.sweeps.start(sweep_id, os.getpid(), cluster)
        check_resources(sweep.config, cluster, f"the cluster at {sweep.address}" if sweep.address else "this machine")
        if not sweep.invalid:
            store.sweeps.add_invalid(sweep_id, plan(sweep.config).invalid)
        results = _tuner(store, sweep).fit()
        stopped = store.sweeps.stop_requested(sweep_id)
        for run in store.list(status=ACTIVE, group=sweep_id):  # trials Tune ended with the sweep, not one by one
            store.interrupt(run.id, "the sweep was stopped", status=Status.STOPPED if stopped else Status.INTERRUPTED)
        store.sweeps.finish(sweep_id, _end_status(results, stopped), _errors(results))
    except Exception as err:  # Ray would not start, the cluster went away, the storage is unwritable
        store.sweeps.interrupt(sweep_id, f"{type(err).__name__}: {err}"[:500], status=SweepStatus.FAILED)
        raise
    except BaseException as err:  # Ctrl-C or a signal: finished trials stay, --resume goes on
        store.sweeps.interrupt(sweep_id, f"interrupted ({type(err).__name__}); resume it to finish the rest")
        raise
    finally:
        LISTENERS.pop(sweep_id, None)
        stop_ray()
    return store.sweeps.get(sweep_id)


class ClusterUnreachable(CnnLabError):
    """The Ray cluster named by ``--address`` (or ``RAY_ADDRESS``, or the Sweep page) cannot be joined."""


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds on a cluster that is not there: Ray itself retries a dead address for many minutes."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():  # ray://, "auto": let Ray judge them
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            speaks = os.environ.get("RAY_USE_TLS", "0") in ("1", "true") or _speaks_http2(sock)
    except OSError as err:
        raise ClusterUnreachable(
            f"cannot reach the Ray cluster at {address} ({err.strerror or err}): is `ray start --head` running "
            "there, and is its port open from this machine?"
        ) from None
    if not speaks:  # ray.init would wait for minutes on a server that never answers as Ray's does
        raise ClusterUnreachable(
            f"something answers at {address}, but it is not a Ray cluster (no gRPC): give the address "
            "`ray start --head` printed (its port is 6379 unless --port said otherwise)"
        )


def _speaks_http2(sock: socket.socket) -> bool:
    """Whether the server answers HTTP/2's connection preface with a SETTINGS frame, as Ray's gRPC server
    (the GCS) does; a web server, SSH or a database answers something else, or nothing (the socket timeout)."""
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # preface, empty SETTINGS
    head = b""
    with contextlib.suppress(OSError):
        while len(head) < 9:
            chunk = sock.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    return len(head) == 9 and head[3] == 4  # a frame header: 3 bytes length, then the type (4: SETTINGS)


def start_ray(address: str | None) -> dict[str, Any]:
    """Start Ray here, or join the cluster at ``address``; what it found (nodes, CPUs, GPUs, start time)."""
    import ray

    began = time.perf_counter()
    with _own_signal_handlers():
        _init_ray(address)
    # Ignored below: Ray leaves nodes() and cluster_resources() unannotated
    nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return {
        "joined": bool(address),
        "address": address,
        "gcs_address": ray.get_runtime_context().gcs_address,
        "nodes": [n["NodeID"] for n in nodes],
        "cpus": resources.get("CPU", 0),
        "gpus": resources.get("GPU", 0),
        "ray_start_s": round(time.perf_counter() - began, 3),
    }


def _init_ray(address: str | None) -> None:
    import ray

    options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:  # refused, a token it lacks, a bad address
            why = str(err).strip().splitlines()[-1][:300]
            raise ClusterUnreachable(
                f"cannot join the Ray cluster at {address}: {why} (Ray 2.60 clusters want their auth token: "
                "copy ~/.ray/auth_token from the head or set RAY_AUTH_TOKEN)"
            ) from None
    else:  # "local": a new embedded Ray, never one a `ray start` on this machine left its address for
        ray.init(address="local", **options)


@contextlib.contextmanager
def _own_signal_handlers() -> Iterator[None]:
    """Keep this process's SIGTERM, SIGHUP and SIGINT handlers through ``ray.init``: Ray's C++ core installs
    a failure handler that prints a stack dump for a plain ``kill``; the CLI's handlers end the sweep as
    ``interrupted`` instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in kept.items():
            if handler is not None:
                signal.signal(sig, handler)


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()  # embedded: stops the processes this driver started; joined: only disconnects


def _tuner(store: RunStore, sweep: Sweep) -> Tuner:
    from ray import tune

    cfg = sweep.config
    trials = plan(cfg).trials
    trainable = tune.with_resources(
        tune.with_parameters(_trainable(), sweep_json=cfg.to_json(), trials=trials),
        {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu},
    )
    path = storage_of(store, sweep)
    if tune.Tuner.can_restore(_join(path, EXPERIMENT)):  # a resumed sweep: finished trials stay finished
        return tune.Tuner.restore(_join(path, EXPERIMENT), trainable=trainable, resume_unfinished=True)
    return tune.Tuner(
        trainable,
        param_space=_param_space(cfg, len(trials)),
        tune_config=tune.TuneConfig(
            metric="val_accuracy",
            mode="max",
            search_alg=_searcher(cfg),
            scheduler=_scheduler(cfg),
            num_samples=cfg.num_samples * len(cfg.seeds) if cfg.search == "optuna" else 1,
            max_concurrent_trials=cfg.max_concurrent or None,
            trial_dirname_creator=_trial_dirname,
            reuse_actors=True,  # a worker that has imported torch trains the next trial: ~3 s less per trial
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT,
            storage_path=path,
            callbacks=[TrialRecorder(store, sweep.id)],
            stop=_StopFlag(str(store.root), sweep.id),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),  # a crashed trial is failed
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),  # copied into the run folder as they come
            verbose=0,
        ),
    )


def _trial_dirname(trial: Trial) -> str:
    return trial.trial_id


def _trainable() -> Callable[..., None]:
    from cnn_core.sweeps.trainable import train_trial

    return train_trial


def _param_space(cfg: SweepConfig, n_trials: int) -> dict[str, Any]:
    from ray import tune

    if cfg.search == "optuna":
        return tune_space(cfg)
    return {"index": tune.grid_search(list(range(n_trials)))}  # the plan's trials, validated up front


def _searcher(cfg: SweepConfig) -> Searcher | None:
    if cfg.search != "optuna":
        return None
    from ray.tune.search import Repeater
    from ray.tune.search.optuna import OptunaSearch

    # The Repeater runs each Optuna draw once per seed (``__trial_index__``) and tells Optuna their mean.
    return Repeater(OptunaSearch(seed=cfg.search_seed), repeat=len(cfg.seeds), set_index=True)


def _scheduler(cfg: SweepConfig) -> TrialScheduler | None:
    if cfg.early_stop is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="epoch",
        max_t=cfg.base.train.epochs,
        grace_period=cfg.early_stop.grace_epochs,
        reduction_factor=cfg.early_stop.reduction_factor,
    )


class _StopFlag(Stopper):
    """Tune's stopper: ends the whole sweep once someone asked it to stop (checked at most once a second)."""

    def __init__(self, root: str, sweep_id: str) -> None:
        self.root, self.sweep_id, self._last, self._stop = root, sweep_id, 0.0, False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self.stop_all()

    def stop_all(self) -> bool:
        if not self._stop and time.monotonic() - self._last > STOP_POLL_SECONDS:
            self._last = time.monotonic()
            self._stop = RunStore(self.root).sweeps.stop_requested(self.sweep_id)
        return self._stop


def _end_status(results: ResultGrid, stopped: bool) -> SweepStatus:
    """Stopped when asked to; failed when every trial failed (whatever Tune says of the experiment)."""
    if stopped:
        return SweepStatus.STOPPED
    # Ignored: ResultGrid iterates through __getitem__ (it has no __iter__), which mypy does not follow
    errors = [r.error is not None for r in results]  # type: ignore[attr-defined]
    return SweepStatus.FAILED if errors and all(errors) else SweepStatus.COMPLETED


def _errors(results: ResultGrid) -> str | None:
    """How many trials failed, with the first one's reason (the last line of Ray's error)."""
    errors = [r.error for r in results if r.error is not None]  # type: ignore[attr-defined]
    if not errors:
        return None
    first = (str(errors[0]).strip().splitlines() or ["?"])[-1][:300]
    return f"{len(errors)} of {len(results)} trial(s) failed ({first}); see their runs"


def _join(path: str, name: str) -> str:
    return f"{path.rstrip('/')}/{name}" if "://" in path else str(Path(path) / name)
