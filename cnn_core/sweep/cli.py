"""``sweep``, ``sweep-driver`` and ``sweeps``: the sweep commands, registered on ``cnn_core.cli``'s parser."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``sweep``, ``sweep-driver`` and ``sweeps`` on the CLI's subparsers."""
    p = sub.add_parser("sweep", help="run a sweep of many runs on Ray Tune (local, or a cluster with --address)")
    p.add_argument("spec", nargs="?", metavar="SPEC.json", help="sweep spec JSON")
    p.add_argument("--resume", metavar="ID", help="continue an interrupted sweep")
    p.add_argument("--address", help="Ray cluster address (default $RAY_ADDRESS, else Ray embedded here)")
    p.add_argument("--storage", help="Tune storage path or URI (default a folder under the runs directory)")
    p.add_argument("--runs-dir", metavar="DIR", help="run store folder (default $CNN_LAB_RUNS or ./runs)")
    p.add_argument("--json", action="store_true", help="a final JSON line with every trial")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("sweep-driver", help=argparse.SUPPRESS)  # what the job manager starts: one sweep
    p.add_argument("sweep_id")
    p.add_argument("--runs-dir", metavar="DIR")
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_sweep_driver)

    p = sub.add_parser("sweeps", help="list recorded sweeps")
    p.add_argument("--runs-dir", metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweeps)


def cmd_sweep(args: argparse.Namespace) -> int:
    raise NotImplementedError


def cmd_sweep_driver(args: argparse.Namespace) -> int:
    raise NotImplementedError


def cmd_sweeps(args: argparse.Namespace) -> int:
    raise NotImplementedError
