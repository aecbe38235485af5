"""``python -m cnn_core``: summary, train, resume, predict and runs from a terminal.

User errors print ``error: ...`` on stderr and exit 2 (no traceback); progress goes to stderr so
``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, NoReturn, cast

from cnn_core.cli import data as data_cli
from cnn_core.cli import sweeps as sweep_cli
from cnn_core.config import DEVICES, OPTIMIZERS, POOLINGS, PRECISIONS, SCHEDULES, RunConfig, load_config
from cnn_core.config import PHOTO_SIZES as SIZES
from cnn_core.errors import CnnLabError, storage_error
from cnn_core.people import cli_person
from cnn_core.runs import Run, RunStore, Status
from cnn_core.shapes import layer_table, total_macs, total_params
from cnn_core.teaching import codegen

if TYPE_CHECKING:
    from cnn_core.data import Dataset
    from cnn_core.jobs.cluster import ClusterRuns
    from cnn_core.training.loop import Event


def run() -> NoReturn:
    """The program (``python -m cnn_core``, ``cnn-lab``): ``main()``, the garbage collector kept out of start-up
    and shutdown.

    Importing torch makes about a million objects that live as long as the process, and no garbage. Python's
    collector would walk them all several times while a training command starts (0.5 s on a 2-core CPU) and
    again at exit (about a second): together a tenth of a Fashion-MNIST run. So the collector is off until the
    command has imported what it needs (``startup_done``), and everything is frozen out of its sight before
    the process exits. Shutdown is otherwise unchanged: exit handlers run and files close."""
    gc.disable()
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)


def startup_done() -> None:
    """Turn the collector back on where ``run`` turned it off, first freezing what start-up made (modules, the
    data: they live as long as the process), so collections walk only what comes after. A no-op otherwise."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal or a `kill` ends a run like Ctrl-C does
        signal.signal(sig, _interrupt)
    if args.func not in (cmd_train, cmd_resume, cmd_worker, cmd_pool_worker):  # those call it once torch is in
        startup_done()
    try:
        return cast(int, args.func(args))
    except CnnLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`: not an error worth a traceback
        sys.stderr.close()
        return 0
    except OSError as err:  # a full disk, a folder that changed while it was read: the machine's state, not a bug
        print(f"error: {storage_error(err, args.command)}", file=sys.stderr)
        return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnn-lab", description="CNN Lab from the terminal.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("summary", help="layer table: output shapes, parameters, MACs, stride fit")
    p.add_argument("--config", action="append", metavar="FILE", help="run config JSON (repeatable); default LeNet-5")
    p.add_argument("--json", action="store_true", help="one JSON object per config per line")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("train", help="train a model and record the run")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset", default="mnist", help="mnist, fashion-mnist, kmnist, cifar10, cifar100 or a name from `data list`"
    )
    src.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder with the standard IDX files (named fashion-mnist or kmnist: that dataset's class names), "
        "or with class folders",
    )
    p.add_argument("--size", type=int, choices=SIZES, help="class folders: square input size (default from the images)")
    p.add_argument("--channels", choices=("auto", "1", "3"), default="auto", help="class folders: grey, colour, auto")
    p.add_argument("--config", metavar="FILE", help="run config JSON; flags below override it")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--schedule", choices=SCHEDULES)
    p.add_argument("--pooling", choices=POOLINGS, help="switch every pooling layer")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=DEVICES)
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto: bf16 on a CPU that computes it natively, else fp32 (GPUs too: faster for these small nets)",
    )
    p.add_argument(
        "--val-fraction", type=float, help="part of the training set held out for validation (0: train on all of it)"
    )
    p.add_argument("--no-augment", action="store_true", help="turn off random shifts/rotations/scaling")
    p.add_argument("--name", help="a name for the run")
    p.add_argument("--runs-dir", metavar="DIR", help="run store folder (default $CNN_LAB_RUNS or ./runs)")
    p.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="train on this Ray cluster (default: the app's cluster setting, else $RAY_ADDRESS; none: here)",
    )
    p.add_argument("--json", action="store_true", help="one JSON line per epoch and a final summary line")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resume", help="go on with a stopped, interrupted or failed run from its last saved epoch")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--runs-dir", metavar="DIR", help="run store folder (default $CNN_LAB_RUNS or ./runs)")
    p.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="train on this Ray cluster (default: the app's cluster setting, else $RAY_ADDRESS; none: here)",
    )
    p.add_argument("--json", action="store_true", help="one JSON line per epoch and a final summary line")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("predict", help="predict the class of image files (digits or photos, as the model was trained)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--checkpoint", help="bundled name or .safetensors path (default lenet5-mnist-max)")
    p.add_argument("--json", action="store_true", help="one JSON line per image")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("worker", help=argparse.SUPPRESS)  # what the job manager starts: one run, no output
    p.add_argument("run_id")
    p.add_argument("--runs-dir", metavar="DIR")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("pool-worker", help=argparse.SUPPRESS)  # the job manager's warm worker: run ids on stdin
    p.add_argument("--runs-dir", metavar="DIR")
    p.set_defaults(func=cmd_pool_worker)

    p = sub.add_parser("cluster-bridge", help=argparse.SUPPRESS)  # the job manager's way to a Ray cluster
    p.add_argument("--address", required=True)
    p.add_argument("--runs-dir", metavar="DIR")
    p.set_defaults(func=cmd_cluster_bridge)

    p = sub.add_parser("runs", help="list recorded runs")
    p.add_argument("--runs-dir", metavar="DIR")
    p.add_argument("--reimport", action="store_true", help="add run folders the store does not know (or rebuild it)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
    data_cli.add_commands(sub)
    sweep_cli.add_commands(sub)
    codegen.add_commands(sub)
    return parser


def cmd_summary(args: argparse.Namespace) -> int:
    configs = (
        [(path, load_config(path)) for path in args.config] if args.config else [("LeNet-5 (default)", RunConfig())]
    )
    for label, run in configs:
        layers = layer_table(run.model)
        if args.json:
            print(
                json.dumps(
                    {
                        "config": label,
                        "layers": [layer.to_dict() for layer in layers],
                        "total_params": total_params(layers),
                        "total_macs": total_macs(layers),
                    }
                )
            )
            continue
        print(f"{label}\n{'layer':<8} {'type':<8} {'output (C, H, W)':<17} {'params':>9} {'MACs':>11} {'RF':>4}  fit")
        for layer in layers:
            fit = (
                ""
                if layer.type in ("fc", "flatten")
                else "yes"
                if layer.fits
                else f"no: drops {layer.dropped} row(s)/col(s)"
            )
            shape = "×".join(map(str, layer.output_shape))
            print(
                f"{layer.name:<8} {layer.type:<8} {shape:<17} {layer.params:>9,} {layer.macs:>11,} "
                f"{layer.receptive_field:>4}  {fit}"
            )
        print(f"total parameters {total_params(layers):,}, multiply-adds {total_macs(layers):,}\n")
    return 0


def _train_config(args: argparse.Namespace) -> RunConfig:
    run = load_config(args.config) if args.config else RunConfig()
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "seed": args.seed,
        "device": args.device,
        "precision": args.precision,
        "val_fraction": args.val_fraction,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.no_augment:
        overrides["augment"] = False
    model = run.model.with_pooling(args.pooling) if args.pooling else run.model
    return replace(run, model=model, train=replace(run.train, **overrides))  # replace re-validates


def cmd_train(args: argparse.Namespace) -> int:
    from cnn_core.config import budget
    from cnn_core.data import idx

    run = _train_config(args)
    name = args.data_dir or args.dataset
    budget.check(run)  # before any data is read (or downloaded)
    if args.data_dir:
        idx.prefetch_idx_folder(args.data_dir)  # IDX files are read on a thread while torch is imported below

    from cnn_core.data import PUBLIC, adapt_model, check_fits, library, load_dataset

    if not args.data_dir and args.dataset not in PUBLIC and not cli_person().admin:  # another's private: "none"
        library.get_dataset(args.dataset, visible_to=cli_person())
    channels = args.channels if args.channels == "auto" else int(args.channels)
    data = load_dataset(
        # an IDX folder named like a known dataset (.../fashion-mnist) takes its name and class names; else "idx"
        args.dataset if not args.data_dir else Path(args.data_dir).name.lower(),
        data_dir=args.data_dir,
        val_fraction=run.train.val_fraction,
        size=args.size,
        channels=channels,
    )
    startup_done()
    if data.preprocess != "digit":  # photos: the network's input and classes follow the data
        run = replace(run, model=adapt_model(run.model, data.spec))
    budget.check(run, train_images=len(data.train_y))  # with the data: still before anything is recorded
    check_fits(data, run.model)
    store = RunStore(args.runs_dir)
    store.remove_partial_writes()
    cluster = _join_cluster(args, store)  # before the run is recorded: an unreachable cluster records nothing
    run_id = store.create(
        run,
        dataset=data.name,
        name=args.name,
        data_dir=args.data_dir,
        claim=True,  # running at once: no job manager may take it
        owner=cli_person().id,
    )
    print(f"run {run_id}: {name} ({data.source}), {len(data.train_y):,} training images", file=sys.stderr)
    steps = run.train.epochs * -(-len(data.train_y) // run.train.batch_size)
    return _train_and_report(args, store, run_id, data, total=steps, cluster=cluster)


def cmd_resume(args: argparse.Namespace) -> int:
    from cnn_core.runs.runner import resume_run

    store = RunStore(args.runs_dir)
    store.remove_partial_writes()
    store.mark_orphans()  # a run whose process was killed shows as running until someone looks
    store.get_to_change(args.run_id, cli_person())  # as CNN_LAB_USER: another's private run is "no run"
    cluster = _join_cluster(args, store)
    epoch = resume_run(store, args.run_id, claim=True)  # refused in one line: nothing to go on from
    run = store.get(args.run_id)
    print(f"run {run.id}: {run.label} goes on after epoch {epoch} of {run.epochs}", file=sys.stderr)
    return _train_and_report(args, store, run.id, data=None, total=None, cluster=cluster)


def _join_cluster(args: argparse.Namespace, store: RunStore) -> ClusterRuns | None:
    """The Ray cluster this command trains on (``--address``, else the app's setting or ``RAY_ADDRESS``), joined;
    None: it trains here."""
    from cnn_core.jobs.bridge import address_of

    address = args.address or address_of(store)
    if not address:
        return None
    from cnn_core.jobs.cluster import ClusterRuns

    cluster = ClusterRuns(store, address)
    print(f"training on the Ray cluster at {address} ({cluster.cluster['cpus']:g} CPUs)", file=sys.stderr)
    return cluster


def _train_and_report(
    args: argparse.Namespace,
    store: RunStore,
    run_id: str,
    data: Dataset | None,
    total: int | None,
    cluster: ClusterRuns | None = None,
) -> int:
    """Train a claimed run here, or on ``cluster``, with a progress bar on stderr (and, with ``--json``, a line
    per epoch), then print how it ended; the exit code."""
    from tqdm import tqdm  # imported here: summary and predict should start fast

    from cnn_core.runs.runner import execute_run

    startup_done()
    bar = tqdm(total=total, unit="step", file=sys.stderr, mininterval=0.5, dynamic_ncols=True)
    try:
        if cluster is not None:
            cluster.follow(run_id, data=data, on_event=_progress(args, bar))
        else:
            execute_run(store, run_id, data=data, on_event=_progress(args, bar))
    finally:
        bar.close()  # also on Ctrl-C or a signal, so the message after it starts on its own line
        if cluster is not None:
            cluster.close()
    done = store.get(run_id)
    if args.json:
        print(json.dumps(_summary(done)), flush=True)
    else:
        acc = f"{done.test_accuracy:.2%}" if done.test_accuracy is not None else "n/a"
        print(
            f"{done.status}: test accuracy {acc} in {done.seconds or 0:.1f} s on {done.device}; "
            f"checkpoint {done.checkpoint}"
        )
    if done.status in (Status.FAILED, Status.DIVERGED, Status.INTERRUPTED):
        print(f"error: {done.error}", file=sys.stderr)
        return 1
    return 0


def _progress(args: argparse.Namespace, bar: Any) -> Callable[[Event], None]:
    """The listener that moves ``bar`` (a tqdm) and, with ``--json``, prints each epoch as a line on stdout."""

    def on_event(event: Event) -> None:
        if bar.total != event.total_steps:  # a resumed run learns its length from its first event
            bar.total = event.total_steps
        bar.update(event.step - bar.n)
        if event.kind == "epoch":
            bar.set_postfix(
                epoch=f"{event.epoch}/{event.epochs}",
                loss=f"{event.loss:.3f}",
                val_acc=f"{event.val_accuracy:.4f}" if event.val_accuracy is not None else "-",
            )
            if args.json:
                print(
                    json.dumps(
                        {
                            "epoch": event.epoch,
                            "loss": event.loss,
                            "accuracy": event.accuracy,
                            "val_loss": event.val_loss,
                            "val_accuracy": event.val_accuracy,
                            "lr": event.lr,
                            "images_per_s": event.images_per_s,
                            "elapsed": event.elapsed,
                        }
                    ),
                    flush=True,
                )

    return on_event


def _summary(run: Run) -> dict[str, Any]:
    keys = ["test_accuracy", "val_accuracy", "seconds", "device", "node", "images_per_s", "checkpoint", "error"]
    keys.append("resumed_from")
    return {"run_id": run.id, "name": run.name, "status": run.status, **{k: getattr(run, k) for k in keys}}


def cmd_predict(args: argparse.Namespace) -> int:
    from cnn_core.explain.predict import predict_file
    from cnn_core.model.checkpoint import load_checkpoint, unverified_note

    checkpoint = load_checkpoint(args.checkpoint)
    if not checkpoint.verified:
        print(f"warning: {unverified_note(args.checkpoint)}", file=sys.stderr)
    failed = 0
    for path in args.images:
        answer = predict_file(checkpoint.model, path, preprocess=checkpoint.preprocess, classes=checkpoint.classes)
        failed += "error" in answer
        if args.json:
            print(json.dumps(answer), flush=True)
        elif "error" in answer:
            print(f"{path}: error: {answer['error']}", file=sys.stderr)
        else:
            print(f"{path}: {answer.get('class', answer['prediction'])} ({answer['confidence']:.1%})")
    return 1 if failed else 0


def cmd_worker(args: argparse.Namespace) -> int:
    from cnn_core.runs.runner import execute_run

    startup_done()
    result = execute_run(RunStore(args.runs_dir), args.run_id)
    return 0 if result is not None else 1


def cmd_pool_worker(args: argparse.Namespace) -> int:
    from cnn_core.runs.warm import serve

    store = RunStore(args.runs_dir)
    serve(store, sys.stdin, on_ready=startup_done)
    return 0


def cmd_cluster_bridge(args: argparse.Namespace) -> int:
    from cnn_core.jobs.cluster import serve

    serve(RunStore(args.runs_dir), args.address, sys.stdin)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir, reimport=args.reimport)
    if args.reimport:
        added = store.reimport()
        print(f"re-imported {len(added)} run folder(s)", file=sys.stderr)
    store.mark_orphans()  # CLI runs whose process is gone are not shown as running forever
    for run in store.list(visible_to=cli_person()):
        if args.json:
            keys = ("id", "name", "status", "dataset", "test_accuracy", "device")
            print(json.dumps({k: getattr(run, k) for k in keys}))
        else:
            acc = f"{run.test_accuracy:.2%}" if run.test_accuracy is not None else "-"
            print(f"{run.id}  {run.status:<11} {acc:>7}  {run.label}")
    return 0
