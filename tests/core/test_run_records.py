"""What a run's checkpoints say about themselves: every epoch's checkpoint records the run's own data."""

import json

import pytest

from cnn_core.config import ModelConfig, RunConfig, TrainConfig
from cnn_core.data import adapt_model, load_dataset
from cnn_core.model.checkpoint import load_checkpoint, save_checkpoint
from cnn_core.runs import RunStore
from cnn_core.runs.runner import execute_run, repair_epoch_records
from tests.imagesets import make_image_folder

TWO = ("red-disc", "blue-disc")


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("colour") / "shapes", per_class=10, classes=TWO)


def colour_run(store: RunStore, folder) -> str:
    data = load_dataset(data_dir=folder, size=28)
    model = adapt_model(ModelConfig(), data.spec)
    run = RunConfig(model=model, train=TrainConfig(epochs=2, batch_size=8, device="cpu"))
    run_id = store.create(run, dataset=data.name, data_dir=str(folder))
    execute_run(store, run_id, data=data)
    return run_id


@pytest.mark.slow
def test_every_epoch_checkpoint_of_a_colour_run_keeps_its_preprocessing_and_class_names(colour_folder):
    store = RunStore()
    run_id = colour_run(store, colour_folder)
    epochs = store.epoch_checkpoints(run_id)
    assert len(epochs) == 2
    for path in epochs:
        saved = load_checkpoint(path)
        assert (saved.preprocess, saved.classes) == ("photo:crop", sorted(TWO))


@pytest.mark.slow
def test_epoch_checkpoints_saved_without_their_records_are_repaired_from_the_final_one(colour_folder):
    store = RunStore()
    run_id = colour_run(store, colour_folder)
    for path in store.epoch_checkpoints(run_id):  # as an older version saved them: epoch and accuracy only
        old = load_checkpoint(path)
        save_checkpoint(path, old.model, old.config, {"epoch": old.metadata["epoch"]})
        assert load_checkpoint(path).preprocess == "digit"
    assert repair_epoch_records(store) == [run_id]
    for path in store.epoch_checkpoints(run_id):
        saved = load_checkpoint(path)
        assert (saved.preprocess, saved.classes, saved.metadata["epoch"]) == (
            "photo:crop",
            sorted(TWO),
            saved.metadata["epoch"],
        )
        assert json.loads(path.with_suffix(".json").read_text())["preprocess"] == "photo:crop"
    assert repair_epoch_records(store) == []  # once repaired, nothing to do


@pytest.mark.slow
def test_the_job_manager_repairs_old_epoch_records_when_the_app_starts(colour_folder):
    from cnn_core.jobs import JobManager

    store = RunStore()
    run_id = colour_run(store, colour_folder)
    first = store.epoch_checkpoints(run_id)[0]
    old = load_checkpoint(first)
    save_checkpoint(first, old.model, old.config, {"epoch": 1})  # as an older version saved it
    JobManager(store, start_thread=False)
    assert load_checkpoint(first).preprocess == "photo:crop"
