"""Everything a sweep will need, checked before Ray starts: each trial's memory budget and the data.

Ray takes seconds to start and a sweep whose data is missing would start it only to fail every trial with a
traceback; the same checks serve the CLI (``sweep SPEC``) and the Sweep page (``JobManager.submit_sweep``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_core.config import ModelConfig, budget
from cnn_core.config.sweep import SweepConfig, SweepRefused
from cnn_core.errors import BadDataset, DatasetNotFound, InvalidConfig
from cnn_core.sweeps.space import plan

if TYPE_CHECKING:
    from cnn_core.data import DatasetSpec

# What ``ray.init(address=...)`` joins: HOST:PORT as `ray start --head` prints it, a Ray Client ray://HOST:PORT,
# or "auto" (the cluster this machine's `ray start` left its address for). An IPv6 host comes in brackets.
ADDRESS = re.compile(r"(?:ray://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})")


def check_sweep(config: SweepConfig, address: str | None = None) -> None:
    """Refuse a sweep that cannot run: a trial over the budget, an unknown dataset, a missing ``data_dir``,
    or a dataset the trials' networks do not fit. With a cluster ``address`` the data lives on its nodes, so
    only the budget is checked here (a sweep whose every trial fails is still reported ``failed``)."""
    if address:
        check_address(address)
    trials = plan(config).trials  # refuses an empty or all-invalid space with its reason
    for trial in trials:
        budget.check(trial.run)
    if address:
        return
    check_resources(config, {"cpus": os.cpu_count() or 1, "gpus": _local_gpus()}, "this machine")
    if config.data_dir is not None:
        check_data_dir(config.data_dir)
        return
    spec = _named_spec(config.dataset)
    for trial in trials:
        check_model_fits(spec, trial.run.model, config.dataset)


def check_resources(config: SweepConfig, cluster: dict[str, Any], where: str) -> None:
    """A trial must fit on the cluster (``cpus``, ``gpus`` as ``start_ray`` reports them): Ray would otherwise
    keep it pending forever, and the sweep would wait without a word."""
    want = config.resources
    for kind, need, have in (("cpu", want.cpu, cluster.get("cpus", 0)), ("gpu", want.gpu, cluster.get("gpus", 0))):
        if need > have:
            raise SweepRefused(
                f"resources.{kind}: each trial asks for {need:g} {kind.upper()}(s) but {where} has {have:g}; "
                f"ask for at most {have:g}"
            )


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_address(address: str) -> None:
    """A cluster address Ray can parse, with a port from 1 to 65535 (Ray itself raises a bare ValueError)."""
    match = ADDRESS.fullmatch(address.strip())
    if address.strip() != "auto" and (match is None or not 0 < int(match["port"]) < 65536):
        raise InvalidConfig(
            f"cluster address {address!r}: expected HOST:PORT as `ray start --head` prints it (port 1-65535), "
            "ray://HOST:PORT or auto"[:300]
        )


def check_data_dir(folder: str) -> None:
    """A ``data_dir`` must be a folder with the IDX training files or with class folders."""
    from cnn_core.data import IDX_STEMS
    from cnn_core.data.idx import has_idx_files

    path = Path(folder)
    try:
        if not path.is_dir():
            raise DatasetNotFound(f"data_dir {os.fspath(folder)!r} is not a folder on this machine")
        if has_idx_files(path) or any(p.is_dir() for p in path.iterdir()):
            return
    except OSError as err:
        raise DatasetNotFound(f"cannot read data_dir {os.fspath(folder)!r}: {err.strerror or err}") from None
    raise DatasetNotFound(
        f"no {IDX_STEMS[0]}[.gz] and {IDX_STEMS[1]}[.gz] in data_dir {os.fspath(folder)!r}, and no class folders"
    )


def check_model_fits(spec: DatasetSpec, model: ModelConfig, name: str) -> None:
    """The network's input and classes against a dataset's metadata (what ``check_fits`` finds after loading)."""
    have = f"{model.input_size}×{model.input_size}×{model.in_channels}"
    want = f"{spec.size}×{spec.size}×{spec.channels}"
    if have != want:
        raise BadDataset(f"dataset {name} is {want}, but the sweep's network takes {have}")
    if len(spec.classes) > model.num_classes:
        raise BadDataset(f"dataset {name} has {len(spec.classes)} classes, the sweep's network {model.num_classes}")


def _named_spec(name: str) -> DatasetSpec:
    from cnn_core.data import dataset_names, dataset_spec, unavailable_reason

    if name not in dataset_names():
        raise DatasetNotFound(
            f"unknown dataset {name!r}; choose one of {', '.join(dataset_names())}, or give a data_dir"[:300]
        )
    reason = unavailable_reason(name)
    if reason:
        raise DatasetNotFound(reason)
    return dataset_spec(name)
