"""Each person's share of a shared lab: runs queued or running, sweeps, and disk for runs and datasets.

Administrators and the local owner (the CLI, a loopback app without sign-in) have no limits. The defaults
suit a class on one machine; an operator changes them in a TOML file named by ``CNN_LAB_QUOTAS`` (keys below)
or one environment variable each (``CNN_LAB_QUOTA_RUNS`` ...), which wins over the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields

from cnn_core.data import library
from cnn_core.errors import InvalidConfig, NotAllowed
from cnn_core.people import Person
from cnn_core.runs import ACTIVE, RunStore, SweepStatus

MB = 2**20


@dataclass(frozen=True)
class Quotas:
    runs: int = 3  # runs queued or running at once
    sweeps: int = 1  # sweeps queued or running at once
    run_disk_mb: int = 2000  # checkpoints, epoch checkpoints and logs of all of a person's runs
    dataset_disk_mb: int = 1000  # images and decoded caches of a person's datasets


def limits() -> Quotas:
    """The limits in force: defaults, then the ``CNN_LAB_QUOTAS`` file, then ``CNN_LAB_QUOTA_*`` variables."""
    values: dict[str, object] = {}
    path = os.environ.get("CNN_LAB_QUOTAS")
    if path:
        try:
            with open(path, "rb") as fh:
                values.update(tomllib.load(fh).get("quotas", {}))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise InvalidConfig(f"CNN_LAB_QUOTAS={path}: cannot be read as TOML ({err})") from None
    for f in fields(Quotas):
        env = os.environ.get(f"CNN_LAB_QUOTA_{f.name.upper()}")
        if env:
            values[f.name] = env
    unknown = set(values) - {f.name for f in fields(Quotas)}
    if unknown:
        raise InvalidConfig(f"unknown quota(s): {', '.join(sorted(unknown))}; known: runs, sweeps, *_disk_mb")
    try:
        limits = {k: int(str(v)) for k, v in values.items()}
    except ValueError:
        raise InvalidConfig(f"quotas are whole numbers, got {values}") from None
    if any(v < 0 for v in limits.values()):
        raise InvalidConfig("quotas cannot be negative")
    return Quotas(**limits)


def _limited(person: Person) -> bool:
    return not (person.admin or person.local)


def check_run(store: RunStore, person: Person) -> None:
    """Refuse (``NotAllowed``, one line) a new run that would take ``person`` past their share."""
    if not _limited(person):
        return
    q = limits()
    active = len(store.list(status=ACTIVE, owner=person.id))
    if active >= q.runs:
        raise NotAllowed(
            f"you have {active} run(s) queued or running and your limit is {q.runs}: wait for one to finish or stop one"
        )
    _check_disk(store.disk_usage(person.id), q.run_disk_mb, "runs", "delete runs you no longer need")


def check_sweep(store: RunStore, person: Person) -> None:
    if not _limited(person):
        return
    q = limits()
    active = [s for s in store.sweeps.list(owner=person.id) if s.status in (SweepStatus.QUEUED, SweepStatus.RUNNING)]
    if len(active) >= q.sweeps:
        raise NotAllowed(
            f"you have {len(active)} sweep(s) queued or running and your limit is {q.sweeps}: wait for it to end "
            "or stop it"
        )
    _check_disk(store.disk_usage(person.id), q.run_disk_mb, "runs", "delete runs you no longer need")


def check_dataset(person: Person, adding_bytes: int = 0) -> None:
    """Refuse a new dataset of about ``adding_bytes`` that would take ``person`` past their disk share."""
    if not _limited(person):
        return
    q = limits()
    _check_disk(library.disk_usage(person.id) + adding_bytes, q.dataset_disk_mb, "datasets", "remove a dataset")


def _check_disk(used: int, limit_mb: int, what: str, fix: str) -> None:
    if used >= limit_mb * MB:
        raise NotAllowed(f"your {what} take {used / MB:,.0f} MB and your limit is {limit_mb:,} MB: {fix} to make room")


def usage(store: RunStore, owner: str) -> dict[str, float]:
    """One owner's use, for the Admin page: active runs, active sweeps, MB of runs and of datasets."""
    return {
        "runs": len(store.list(status=ACTIVE, owner=owner)),
        "sweeps": sum(s.status.active for s in store.sweeps.list(owner=owner)),
        "run_mb": store.disk_usage(owner) / MB,
        "dataset_mb": library.disk_usage(owner) / MB,
    }
