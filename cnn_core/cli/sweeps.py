"""``sweep``, ``sweep-driver`` and ``sweeps``: the sweep commands, registered on ``cnn_core.cli``'s parser.

Like ``train``, ``sweep`` runs in the terminal's own process (Ray Tune wants the main thread) with a
progress bar on stderr and, with ``--json``, one summary line on stdout. User errors raise ``CnnLabError``
subclasses: the CLI prints ``error: ...`` and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cnn_core.errors import InvalidConfig
from cnn_core.people import cli_person
from cnn_core.runs import RunStore, SweepStatus

if TYPE_CHECKING:
    from cnn_core.sweeps.callback import Progress


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sweep``, ``sweep-driver`` and ``sweeps`` on the CLI's subparsers."""
    p = sub.add_parser("sweep", help="run many runs at once on Ray Tune (embedded here, or a cluster)")
    p.add_argument("spec", nargs="?", metavar="SPEC.json", help="sweep spec JSON (see README: Sweeps)")
    p.add_argument("--resume", metavar="ID", help="continue an interrupted sweep from Tune's saved state")
    p.add_argument("--address", help="Ray cluster to join (default $RAY_ADDRESS; none: Ray starts embedded here)")
    p.add_argument("--storage", help="Tune storage path or URI (default the sweep's folder in the runs directory)")
    p.add_argument("--runs-dir", metavar="DIR", help="run store folder (default $CNN_LAB_RUNS or ./runs)")
    p.add_argument("--json", action="store_true", help="a final JSON line with every trial")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("sweep-driver", help=argparse.SUPPRESS)  # what the job manager starts: one sweep
    p.add_argument("sweep_id")
    p.add_argument("--runs-dir", metavar="DIR")
    p.set_defaults(func=cmd_sweep_driver)

    p = sub.add_parser("sweeps", help="list recorded sweeps")
    p.add_argument("--runs-dir", metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweeps)


def prepare(store: RunStore, spec: str, address: str | None, storage: str | None) -> str:
    """Read and check a spec (every trial validated, memory budget and data too), then record the sweep as
    running."""
    from cnn_core.config.sweep import load_sweep
    from cnn_core.sweeps.preflight import check_sweep

    config = load_sweep(spec)
    address = address or os.environ.get("RAY_ADDRESS")
    check_sweep(config, address)
    if storage and "://" not in storage:  # Tune wants an absolute path (a URI such as s3://... as it is)
        storage = str(Path(storage).resolve())
    return store.sweeps.create(config, address=address, storage=storage, claim=True, owner=cli_person().id)


def cmd_sweep(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cnn_core.sweeps.driver import run_sweep
    from cnn_core.sweeps.results import sweep_summary

    store = RunStore(args.runs_dir)
    if args.resume:
        if args.spec or args.address or args.storage:
            raise InvalidConfig("--resume continues a recorded sweep: give no spec, --address or --storage with it")
        store.sweeps.resume(args.resume, claim=True, by=cli_person())
        sweep_id = args.resume
    elif not args.spec:
        raise InvalidConfig("name a sweep spec JSON file, or --resume ID")
    else:
        sweep_id = prepare(store, args.spec, args.address, args.storage)
    sweep = store.sweeps.get(sweep_id)
    print(f"sweep {sweep_id}: {sweep.config.trial_count} trial(s), {len(sweep.invalid)} invalid", file=sys.stderr)
    began = time.perf_counter()
    bar = tqdm(total=sweep.config.trial_count, unit="trial", file=sys.stderr, dynamic_ncols=True)

    def on_progress(p: Progress) -> None:
        bar.update(p.done + p.invalid - bar.n)
        best = f"{p.best:.4f}" if p.best is not None else "-"
        bar.set_postfix(running=p.running, pruned=p.pruned, failed=p.failed, best=best, refresh=True)

    try:
        done = run_sweep(store, sweep_id, on_progress=on_progress)
    finally:
        bar.close()
    summary = sweep_summary(store, sweep_id, seconds=time.perf_counter() - began)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        for trial in summary["trials"]:
            acc = f"{trial['test_accuracy']:.2%}" if trial["test_accuracy"] is not None else "-"
            print(f"{trial['run_id']}  {trial['status']:<10} {acc:>7}  {trial['name']}")
        print(f"{done.status}: {len(summary['trials'])} trial(s) in {summary['seconds']:.1f} s")
    if done.status is SweepStatus.FAILED:
        print(f"error: {done.error}", file=sys.stderr)
    return 0 if done.status is SweepStatus.COMPLETED else 1


def cmd_sweep_driver(args: argparse.Namespace) -> int:
    from cnn_core.sweeps.driver import run_sweep

    done = run_sweep(RunStore(args.runs_dir), args.sweep_id)
    return 0 if done.status in (SweepStatus.COMPLETED, SweepStatus.STOPPED) else 1


def cmd_sweeps(args: argparse.Namespace) -> int:
    from cnn_core.runs import pid_alive

    store = RunStore(args.runs_dir)
    store.sweeps.mark_orphans(pid_alive)  # a driver that is gone does not leave its sweep running forever
    for sweep in store.sweeps.list(visible_to=cli_person()):
        trials = store.sweeps.trials(sweep.id)
        if args.json:
            keys = ("id", "name", "status", "address", "error")
            print(json.dumps({**{k: getattr(sweep, k) for k in keys}, "trials": len(trials)}))
        else:
            print(f"{sweep.id}  {sweep.status:<11} {len(trials):>4}/{sweep.config.trial_count:<4} {sweep.label}")
    return 0
