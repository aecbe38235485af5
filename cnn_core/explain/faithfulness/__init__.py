"""How far to trust an explanation: scores kept apart from the methods that make them.

Four questions, one function each, all seeded so the same input gets the same scores, and one axiom:

- ``infidelity`` (Captum): do the attributions predict how the score changes when a square of the
  digit is blacked out? Lower is better.
- ``sensitivity`` (Captum's ``sensitivity_max``): does the map change a lot when the input barely
  changes? Lower is better.
- ``deletion_curve``: remove the most-attributed pixels first; the class probability should fall
  fast, faster than removing pixels in a random order. Smaller area is better.
- ``randomisation_check`` (Adebayo et al., 2018, "Sanity Checks for Saliency Maps"): the same method
  on the same architecture with re-initialised weights. A map that barely changes (rank
  correlation near 1) shows the input's edges, not what the model learned. Like the paper, both
  the signed maps and their absolute values are compared: on LeNet-5, Integrated Gradients and
  DeepLift with a black baseline correlate ~0.98 in absolute value (they are x·something, so every
  black pixel is 0 in both maps: they show where the ink is) but ~0.05 signed (which strokes count
  for or against the class is what the training changed).

``report`` scores every map of a page at once, and ``summary`` says in plain words which to trust.
"""

from cnn_core.explain.faithfulness.metrics import (
    DELETION_STEPS,
    INFIDELITY_SAMPLES,
    RANDOMISATION_PASS,
    SENSITIVITY_SAMPLES,
    Completeness,
    DeletionCurve,
    completeness,
    completeness_all,
    deletion_curve,
    infidelity,
    randomisation_check,
    randomised_copy,
    rank_correlation,
    sensitivity,
)
from cnn_core.explain.faithfulness.report import (
    FLAT,
    SCORE_HELP,
    Faithfulness,
    deletion_frame,
    report,
    score,
    score_all,
    summary,
)

__all__ = [
    "DELETION_STEPS",
    "FLAT",
    "INFIDELITY_SAMPLES",
    "RANDOMISATION_PASS",
    "SCORE_HELP",
    "SENSITIVITY_SAMPLES",
    "Completeness",
    "DeletionCurve",
    "Faithfulness",
    "completeness",
    "completeness_all",
    "deletion_curve",
    "deletion_frame",
    "infidelity",
    "rank_correlation",
    "randomisation_check",
    "randomised_copy",
    "report",
    "score",
    "score_all",
    "sensitivity",
    "summary",
]
