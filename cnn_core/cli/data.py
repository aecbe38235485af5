"""``data add|list|remove``: the user's named datasets from a terminal, registered on ``cnn_core.cli``'s parser."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from cnn_core.config import PHOTO_FITS as FITS
from cnn_core.config import PHOTO_SIZES as SIZES
from cnn_core.people import cli_person


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("data", help="your own image datasets: add (a folder or .zip of class folders), list, remove")
    data = p.add_subparsers(dest="data_command", required=True)
    a = data.add_parser("add", help="add a folder or .zip with one subfolder of images per class")
    a.add_argument("name", help="the dataset's name (letters, digits, - _ .)")
    a.add_argument("source", metavar="PATH_OR_ZIP")
    a.add_argument("--size", type=int, choices=SIZES, default=32, help="square input size (default 32)")
    a.add_argument("--channels", choices=("auto", "1", "3"), default="auto", help="grey (1), colour (3) or auto")
    a.add_argument("--fit", choices=FITS, default="crop", help="make images square by centre-crop or padding")
    a.add_argument("--json", action="store_true", help="one summary line")
    a.set_defaults(func=cmd_add)
    ls = data.add_parser("list", help="list the datasets")
    ls.add_argument("--json", action="store_true", help="one JSON line per dataset")
    ls.set_defaults(func=cmd_list)
    rm = data.add_parser("remove", help="delete a dataset (runs trained on it keep their checkpoints)")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)


def cmd_add(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cnn_core.data import PUBLIC
    from cnn_core.data.library import add_dataset

    bar = tqdm(total=0, unit="image", file=sys.stderr, mininterval=0.5, dynamic_ncols=True, desc="decoding")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    channels = args.channels if args.channels == "auto" else int(args.channels)
    try:
        entry = add_dataset(
            args.name, args.source, args.size, channels, args.fit, progress, reserved=PUBLIC, owner=cli_person().id
        )
    finally:
        bar.close()
    if args.json:
        keys = ("name", "size", "channels", "fit", "classes", "train_counts", "test_counts", "mean", "std")
        summary = {k: asdict(entry)[k] for k in keys} | {"images": entry.images, "skipped": entry.skipped}
        print(json.dumps(summary))
        return 0
    kind = "colour" if entry.channels == 3 else "grey"
    print(f"{entry.name}: {entry.images:,} images, {entry.size}×{entry.size} {kind}, {len(entry.classes)} classes")
    for cls, train, test in zip(entry.classes, entry.train_counts, entry.test_counts, strict=True):
        print(f"  {cls:<24} {train:>6,}" + (f" (+{test:,} test)" if test else ""))
    if entry.skipped:
        print(f"skipped {len(entry.skipped):,} file(s):", file=sys.stderr)
        for name, why in entry.skipped[:10]:
            print(f"  {name}: {why}", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from cnn_core.data.library import list_datasets

    for entry in list_datasets(visible_to=cli_person()):
        if args.json:
            keys = ("name", "size", "channels", "fit", "classes", "source")
            print(json.dumps({k: asdict(entry)[k] for k in keys} | {"images": entry.images}))
        else:
            kind = "colour" if entry.channels == 3 else "grey"
            shape = f"{entry.size}×{entry.size} {kind}"
            print(f"{entry.name:<24} {entry.images:>7,} images  {shape}  {len(entry.classes)} classes")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from cnn_core.data.library import remove_dataset

    remove_dataset(args.name, by=cli_person())
    print(f"removed {args.name}", file=sys.stderr)
    return 0
