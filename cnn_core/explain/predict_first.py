"""Predict first: the learner guesses what the model will answer and where it will look, then sees.

Studies of teaching with saliency maps found that showing a map teaches little about what a model will do
next, while predicting before the reveal does. A question is a test image — half the time one the model gets
wrong, where guessing is hardest and most telling. "Where it looks" is the block of a 3 × 3 grid holding
the most positive attribution (Integrated Gradients for the model's own answer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from cnn_core import explain

if TYPE_CHECKING:
    from cnn_core.model import ConvNet

REGIONS = 3  # a 3 × 3 grid: coarse enough to click, fine enough to tell a loop from a stem
MISTAKE_SHARE = 0.5  # of the questions, those the model answers wrongly (when it makes any mistakes)
ROWS, COLUMNS = ("top", "middle", "bottom"), ("left", "centre", "right")


def pick_question(labels: np.ndarray, predictions: np.ndarray, rng: np.random.Generator) -> int:
    """A test image: a mistake of the model with probability ``MISTAKE_SHARE``, else any image."""
    wrong = np.flatnonzero(np.asarray(labels) != np.asarray(predictions))
    if len(wrong) and rng.random() < MISTAKE_SHARE:
        return int(rng.choice(wrong))
    return int(rng.integers(len(labels)))


def region_name(region: str) -> str:
    """'0,2' -> 'top right'; the centre block is just 'centre'."""
    row, col = (int(v) for v in region.split(","))
    return "centre" if (row, col) == (1, 1) else f"{ROWS[row]} {COLUMNS[col]}"


def region_sums(attribution: np.ndarray, regions: int = REGIONS) -> np.ndarray:
    """(regions, regions) sums of the positive attribution (evidence for the class) in each block of the
    grid; channels are added up. A block holds rows i·H/regions … (i+1)·H/regions."""
    values = np.clip(np.asarray(attribution, dtype=np.float64), 0, None)
    values = values.reshape(-1, *values.shape[-2:]).sum(0)
    height, width = values.shape
    rows, cols = np.arange(height) * regions // height, np.arange(width) * regions // width
    sums = np.zeros((regions, regions))
    np.add.at(sums, (rows[:, None], cols[None, :]), values)
    return sums


def looked_at(attribution: np.ndarray, regions: int = REGIONS) -> str:
    """The block ('row,col') with the most positive attribution: where the model found its answer."""
    row, col = divmod(int(np.argmax(region_sums(attribution, regions))), regions)
    return f"{row},{col}"


def reveal(model: ConvNet, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's probabilities and its Integrated Gradients map (H, W, or C, H, W) for its own answer."""
    x = torch.as_tensor(image, dtype=torch.float32)
    x = x.reshape(1, -1, *x.shape[-2:])
    if x.shape[1] != model.config.in_channels:
        x = x.mean(1, keepdim=True).repeat(1, model.config.in_channels, 1, 1)
    probs = model.predict_proba(x)[0].numpy()
    attribution = explain.attribute("integrated_gradients", model, x, int(probs.argmax()))[0].numpy()
    return probs, attribution[0] if attribution.shape[0] == 1 else attribution


@dataclass(frozen=True)
class Score:
    """A session's running score: right answers and right places, out of the questions revealed."""

    asked: int = 0
    answers: int = 0
    places: int = 0

    def add(self, answer_right: bool, place_right: bool) -> Score:
        return replace(
            self, asked=self.asked + 1, answers=self.answers + answer_right, places=self.places + place_right
        )
