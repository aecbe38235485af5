"""Predict first: questions lean to mistakes, "where it looks" is the block with the most evidence, the score."""

import numpy as np

from cnn_core.explain import predict_first
from cnn_core.model.checkpoint import load_checkpoint


def test_about_half_the_questions_are_the_models_mistakes():
    labels, predictions = np.zeros(1000, int), np.zeros(1000, int)
    predictions[:10] = 1  # 1 % wrong
    rng = np.random.default_rng(0)
    picked = [predict_first.pick_question(labels, predictions, rng) for _ in range(400)]
    share = np.mean([p < 10 for p in picked])
    assert 0.4 < share < 0.6
    assert predict_first.pick_question(labels, labels, rng) in range(1000)  # no mistakes: any image


def test_where_it_looks_is_the_block_with_the_most_positive_attribution():
    attribution = np.zeros((28, 28))
    attribution[20:27, 1:8] = 1.0  # bottom left
    attribution[0:9, 10:18] = -5.0  # evidence against counts for nothing
    assert predict_first.looked_at(attribution) == "2,0"
    assert predict_first.region_name("2,0") == "bottom left" and predict_first.region_name("1,1") == "centre"
    sums = predict_first.region_sums(np.ones((3, 28, 28)))
    assert sums.shape == (3, 3) and sums.sum() == 3 * 28 * 28


def test_the_reveal_gives_the_models_answer_and_a_map_of_the_image(bundled):
    model = load_checkpoint("lenet5-mnist-max").model
    image = bundled.test_x[3, 0].numpy() / 255
    probs, attribution = predict_first.reveal(model, image)
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-5 and attribution.shape == (28, 28)
    assert int(probs.argmax()) == int(bundled.test_y[3])
    assert predict_first.looked_at(attribution) in {f"{r},{c}" for r in range(3) for c in range(3)}


def test_the_score_counts_answers_and_places():
    score = predict_first.Score().add(True, False).add(True, True).add(False, False)
    assert (score.asked, score.answers, score.places) == (3, 2, 1)
