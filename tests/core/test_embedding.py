"""The embedding: penultimate features, a steady 2-D projection, and classes measurably apart after training."""

import numpy as np
import torch

from cnn_core.config import ModelConfig
from cnn_core.explain import embedding
from cnn_core.model import build_model
from cnn_core.model.checkpoint import load_checkpoint


def test_features_are_what_the_output_layer_reads(bundled):
    model = load_checkpoint("lenet5-mnist-max").model
    features = embedding.penultimate_features(model, bundled.test_x[:50], batch_size=16)
    assert features.shape == (50, 84)
    with torch.no_grad():
        logits = model(bundled.test_x[:50].float() / 255)
    assert torch.allclose(model.fc2(features), logits, atol=1e-4)
    no_hidden = build_model(ModelConfig(fc=()), seed=0)
    assert embedding.penultimate_features(no_hidden, bundled.test_x[:5]).shape == (5, 120)


def test_a_trained_network_separates_the_classes_far_better_than_an_untrained_one(bundled):
    labels = bundled.test_y.numpy()
    scores = {}
    for name, model in (("trained", load_checkpoint("lenet5-mnist-max").model), ("untrained", build_model(seed=0))):
        coords = embedding.project(embedding.penultimate_features(model, bundled.test_x))
        scores[name] = embedding.separation(coords, labels)
    # measured: 15.7 against 0.9 (max pooling, 1,000 test digits)
    assert scores["trained"] > 5 * scores["untrained"], scores


def test_projections_are_repeatable_and_keep_the_previous_epochs_orientation(bundled):
    features = embedding.penultimate_features(load_checkpoint("lenet5-mnist-avg").model, bundled.test_x[:300])
    first = embedding.project(features)
    assert np.array_equal(first, embedding.project(features))
    assert abs(float(first.std()) - 1) < 1e-4
    mirrored = first * np.array([-1, 1], dtype=np.float32)
    assert np.allclose(embedding.project(features, previous=mirrored), mirrored, atol=1e-5)


def test_frames_give_points_and_a_score_per_epoch_on_a_sample(bundled):
    models = [(1, build_model(seed=0)), (2, load_checkpoint("lenet5-mnist-max").model)]
    points, scores = embedding.frames(models, bundled.test_x[:200], bundled.test_y[:200].numpy())
    assert list(scores["epoch"]) == [1, 2] and scores["separation"].is_monotonic_increasing
    assert len(points) == 400 and set(points.columns) == {"epoch", "index", "x", "y", "label"}
    assert len(embedding.sample(10_000)) == embedding.MAX_POINTS and list(embedding.sample(5)) == [0, 1, 2, 3, 4]
    separated = np.array([[0, 0], [0, 0.1], [5, 5], [5, 5.1]])
    assert embedding.separation(separated, np.array([0, 0, 1, 1])) > 100
    assert embedding.separation(separated, np.array([0, 1, 0, 1])) < 0.01
