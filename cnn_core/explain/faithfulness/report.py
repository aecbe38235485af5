"""Every map of a page scored at once (``report``), and in plain words which to trust (``summary``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from torch import nn

from cnn_core import explain
from cnn_core.explain.faithfulness.metrics import (
    RANDOMISATION_PASS,
    DeletionCurve,
    deletion_curve,
    infidelity,
    randomisation_check,
    randomised_copy,
    remembered_forward,
    sensitivity,
)

if TYPE_CHECKING:
    from cnn_core.explain.attributions import ForwardMemory

FLAT = "one of the two maps (the trained or the untrained network's) is blank, so there is no ranking to compare"
SCORE_HELP = {  # what each column of ``report``'s rows means, in a sentence a page can show on hover
    "infidelity": "Does the map predict how the class score changes when a 7×7 square of the digit is blacked out? "
    "Lower is better.",
    "sensitivity": "How much the map changes when every pixel moves by an invisible 2 %. Lower is steadier.",
    "deletion area": "Black out the pixels the map ranks highest first and watch the class probability: the area "
    "under that curve. Lower: the map found the pixels that matter (beat the dashed random order).",
    "random-model ρ": "Rank correlation with the same method's map on an untrained copy of the network. Near 0: "
    "the map shows what the model learned; near 1: it only traces the digit (Adebayo et al., 2018). A dash: " + FLAT,
    "random-model ρ |map|": "The same on absolute values (where, not which way). Integrated Gradients and DeepLift "
    "from a black image score about 1: they are zero wherever there is no ink. A dash: " + FLAT,
}


@dataclass(frozen=True, eq=False)
class Faithfulness:
    method: str
    infidelity: float
    sensitivity: float
    deletion: DeletionCurve
    randomisation: float  # Spearman correlation of the maps of the trained and a re-initialised model
    randomisation_abs: float  # the same on |map|

    def row(self) -> dict[str, Any]:
        return {
            "method": _title(self.method),
            "infidelity": self.infidelity,
            "sensitivity": self.sensitivity,
            "deletion area": self.deletion.area,
            "random-model ρ": self.randomisation,
            "random-model ρ |map|": self.randomisation_abs,
        }


def private_copies(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Private copies of the model and of its re-initialised twin, which scoring runs hooks and methods on."""
    return explain.private_copy(model), explain.private_copy(randomised_copy(model))


def score(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: int,
    options: dict[str, Any] | None = None,
    attribution: torch.Tensor | None = None,
    memory: ForwardMemory | None = None,
    copies: tuple[nn.Module, nn.Module] | None = None,
) -> Faithfulness:
    """All four scores of one method's map for one input and target. ``memory``: see ``RememberedForward``;
    ``copies``: private copies of the model and of its re-initialised twin, made once for several methods
    (they run one after another, and a scoring run would otherwise copy a model 17 times)."""
    options = options or {}
    private, random_private = copies or private_copies(model)
    if attribution is None:
        attribution = explain.run_method(method, private, x, target, options)
    signed, absolute = randomisation_check(model, x, method, target, options, attribution, memory, random_private)
    forward = remembered_forward(model, memory, "model")
    return Faithfulness(
        method=method,
        infidelity=infidelity(forward, x, attribution, target),
        sensitivity=sensitivity(
            model, x, method, target, options, attribution=attribution, memory=memory, private=private
        ),
        deletion=deletion_curve(forward, x, target, attribution),
        randomisation=signed,
        randomisation_abs=absolute,
    )


def score_all(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    attributions: dict[str, torch.Tensor],
    options: dict[str, dict[str, Any]] | None = None,
    memory: ForwardMemory | None = None,
) -> list[Faithfulness]:
    """``score`` for every map in ``attributions`` (method name -> map), in that order."""
    options = options or {}
    copies = private_copies(model)
    return [
        score(model, x, name, target, options.get(name, {}), attribution, memory, copies)
        for name, attribution in attributions.items()
    ]


def deletion_frame(scores: list[Faithfulness], baseline: DeletionCurve | None = None) -> pd.DataFrame:
    """Long-form rows (method, fraction removed, probability) of the deletion curves, for one line chart;
    ``baseline`` (the random order) is added as "random order"."""
    curves = [(_title(s.method), s.deletion) for s in scores] + ([("random order", baseline)] if baseline else [])
    return pd.concat(
        [
            pd.DataFrame({"method": name, "fraction removed": c.fractions, "probability": c.probabilities})
            for name, c in curves
        ],
        ignore_index=True,
    )


def report(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    attributions: dict[str, torch.Tensor],
    options: dict[str, dict[str, Any]] | None = None,
    memory: ForwardMemory | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the Explain page shows: a row of scores per method, and every deletion curve next to the
    random order's (the curve to beat). ``memory``: see ``RememberedForward``."""
    scores = score_all(model, x, target, attributions, options, memory)
    rows = pd.DataFrame([s.row() for s in scores])
    return rows, deletion_frame(scores, deletion_curve(remembered_forward(model, memory, "model"), x, target))


def summary(rows: pd.DataFrame, class_name: str) -> str:
    """``report``'s rows in one plain paragraph: which maps pass the randomisation check, which of those
    finds the pixels that matter best (deletion area), and where to start. Empty for no rows."""
    if rows.empty:
        return ""
    rho = rows["random-model ρ"].abs()
    passed, failed, blank = rows[rho < RANDOMISATION_PASS], rows[rho >= RANDOMISATION_PASS], rows[rho.isna()]
    if len(passed):
        parts = [
            _said_of(
                passed,
                "passes the sanity check: its map changes when the network's weights are scrambled, so it shows",
                "pass the sanity check: their maps change when the network's weights are scrambled, so they show",
            )
            + " what this model learned."
        ]
        if len(failed):
            parts.append(
                _said_of(failed, "barely changes", "barely change")
                + f" on an untrained copy (ρ ≥ {RANDOMISATION_PASS}): trust {_pronoun(failed)} less."
            )
    else:
        parts = [
            "No map passes the sanity check here: each looks much the same on an untrained copy of the network, "
            "so read them as outlines of the digit rather than as the model's reasons."
        ]
    if len(blank):
        parts.append(f"{_names(blank)} cannot be checked here: {FLAT}.")
    lead = "Of the maps that pass" if len(passed) else "Of them all"
    parts.append(_advice(passed if len(passed) else rows, class_name, lead))
    return " ".join(p for p in parts if p)


def _advice(rows: pd.DataFrame, class_name: str, lead: str) -> str:
    """Which of ``rows`` finds the pixels that matter best, and which are best by the other two scores."""
    best = _best(rows, "deletion area")
    if best is None:
        return ""
    also: dict[str, list[str]] = {}
    for column, what in (
        ("infidelity", "best predicts what hiding a patch does"),
        ("sensitivity", "is the steadiest when the input barely moves"),
    ):
        name = _best(rows, column)
        if name is not None and name != best:
            also.setdefault(name, []).append(what)
    others = "; ".join(f"**{name}** {' and '.join(whats)}" for name, whats in also.items())
    subject = "It" if len(rows) == 1 else f"{lead}, **{best}**"
    return (
        f"{subject} points at the pixels that matter most: removing them first makes the probability of "
        f"{class_name} fall fastest{f' ({others})' if others else ''}. Start with the **{best}** map."
    )


def _best(rows: pd.DataFrame, column: str) -> str | None:
    scores = rows[column].dropna()
    return None if scores.empty else str(rows.loc[scores.idxmin(), "method"])


def _said_of(rows: pd.DataFrame, one: str, several: str) -> str:
    """The methods of ``rows`` in bold, then what is said of them, in the singular or the plural."""
    return f"{_names(rows)} {one if len(rows) == 1 else several}"


def _pronoun(rows: pd.DataFrame) -> str:
    return "it" if len(rows) == 1 else "them"


def _names(rows: pd.DataFrame) -> str:
    names = [f"**{name}**" for name in rows["method"]]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _title(name: str) -> str:
    return explain.METHODS[name].title if name in explain.METHODS else name
