"""SweepConfig: validation that names the path and the rule, the JSON round trip, planning, and the CLI's
refusals (exit 2 with the reason) — all before Ray is ever started."""

import json

import pytest

from cnn_core.cli import main
from cnn_core.config import RunConfig
from cnn_core.config.sweep import MAX_TRIALS, SweepConfig, SweepRefused
from cnn_core.errors import InvalidConfig
from cnn_core.runs import RunStore
from cnn_core.sweeps.space import apply, configurations, plan, trial_name

POOL_BY_FILTER = {
    "space": {"model.conv.*.pool": {"grid": ["max", "avg"]}, "model.conv.0.kernel_size": {"grid": [3, 5, 7]}},
    "seeds": [0, 1, 2],
}


def test_json_round_trip_keeps_every_field():
    sweep = SweepConfig.from_dict(
        {
            **POOL_BY_FILTER,
            "name": "article claim",
            "base": {"train": {"epochs": 3}},
            "search": "random",
            "num_samples": 4,
            "early_stop": {"grace_epochs": 1, "reduction_factor": 3},
            "resources": {"cpu": 1, "gpu": 0.25},
            "max_concurrent": 2,
        }
    )
    assert SweepConfig.from_json(sweep.to_json()) == sweep
    assert sweep.base.train.epochs == 3 and sweep.resources.gpu == 0.25


def test_star_on_pool_switches_only_the_layers_that_pool():
    run = apply(RunConfig(), {"model.conv.*.pool": "avg"}, seed=4)
    assert [b.pool for b in run.model.conv] == ["avg", "avg", "none"]
    assert run.train.seed == 4


def test_an_invalid_combination_is_skipped_with_the_rule_it_breaks():
    result = plan(SweepConfig.from_dict(POOL_BY_FILTER))
    assert len(result.trials) == 2 * 2 * 3  # filter 7 shrinks conv3's input below its filter: skipped
    assert len(result.invalid) == 2
    assert all(i.params["model.conv.0.kernel_size"] == 7 and "conv3" in i.reason for i in result.invalid)


def test_random_search_crosses_grid_values_with_samples_reproducibly():
    spec = {"space": {"model.conv.*.pool": {"grid": ["max", "avg"]}, "train.lr": {"loguniform": [1e-4, 1e-2]}}}
    sweep = SweepConfig.from_dict({**spec, "search": "random", "num_samples": 3, "seeds": [0, 1]})
    configs = configurations(sweep)
    assert sweep.trial_count == 12 and len(configs) == 6
    assert all(1e-4 <= c["train.lr"] <= 1e-2 for c in configs)
    assert configs == configurations(sweep)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"space": {"model.conv.9.kernel_size": {"grid": [3]}}}, "unknown path 'model.conv.9.kernel_size'"),
        ({"space": {"train.lrr": {"grid": [0.1]}}}, "unknown path 'train.lrr'"),
        ({"space": {}}, "the space is empty"),
        ({"space": {"train.lr": {"grid": []}}}, "grid needs 1 to 100 values"),
        (
            {"space": {"train.lr": {"grid": [0.1] * 50}, "train.batch_size": {"grid": [8] * 50}}},
            f"at most {MAX_TRIALS:,} are allowed",
        ),
        ({"space": {"model.conv.0.kernel_size": {"grid": [40, 50]}}}, "every configuration of the space is invalid"),
        ({"space": {"train.lr": {"uniform": [0.1, 0.01]}}, "search": "random"}, "uniform needs lo < hi"),
        ({"space": {"train.lr": {"uniform": [0.01, 0.1]}}}, "a grid search needs grid or choice values"),
        ({"space": {"train.seed": {"grid": [1, 2]}}}, "set by the sweep's seeds list"),
    ],
)
def test_invalid_specs_exit_2_with_their_reason(tmp_path, capsys, spec, reason):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    assert main(["sweep", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert reason in capsys.readouterr().err
    assert RunStore(tmp_path / "runs").sweeps.list() == []  # nothing recorded, Ray never started


def test_refusals_are_typed():
    with pytest.raises(SweepRefused):
        SweepConfig.from_dict({"space": {}})
    with pytest.raises(InvalidConfig, match="seeds: a seed is listed twice"):
        SweepConfig.from_dict({"space": {"train.lr": {"grid": [0.1]}}, "seeds": [1, 1]})


def test_trial_names_say_what_differs():
    assert trial_name({"model.conv.*.pool": "avg", "train.lr": 0.00312}, 2) == (
        "pooling (every block) avg · learning rate 0.00312 · seed 2"  # the Train page's words, not config paths
    )
    assert (
        trial_name({"model.conv.0.kernel_size": 3, "model.fc.0": 128}, 0)
        == "conv1 filter size 3 · fc1 width 128 · seed 0"
    )


def test_sweeps_lists_recorded_sweeps_and_marks_a_dead_drivers_sweep_interrupted(tmp_path, capsys):
    store = RunStore(tmp_path)
    sweep_id = store.sweeps.create(SweepConfig.from_dict({**POOL_BY_FILTER, "name": "claim"}), claim=True)
    store.sweeps.start(sweep_id, pid=999_999_999, cluster={})  # no such process
    assert main(["sweeps", "--json", "--runs-dir", str(tmp_path)]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line == {**line, "id": sweep_id, "name": "claim", "status": "interrupted", "trials": 0}


def test_a_cluster_that_is_not_there_is_refused_in_seconds_and_the_sweep_failed(tmp_path, capsys):
    from tests.e2e.serve import free_port

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"space": {"train.lr": {"grid": [0.01]}}}))
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["sweep", str(spec), "--address", address, "--runs-dir", str(tmp_path / "runs")]) == 2
    assert f"cannot reach the Ray cluster at {address}" in capsys.readouterr().err
    (sweep,) = RunStore(tmp_path / "runs").sweeps.list()
    assert sweep.status == "failed" and "cannot reach" in sweep.error
