"""Champion and shadow on the same live rows: agreement at once, estimated quality before
labels, realized quality (and the gate's significance rule) when labels arrive.

Every number is computed over the rows the shadow scored, each paired with the champion's
answer to the same request (``monitor.store.stages``). The estimate before labels is the
mean top-class probability (a confident classifier's expected accuracy), for the rows where
a model gave probabilities; regression has none.

    >>> comparison = compare(pairs, "classification", gate)
    >>> comparison.agreement, comparison.labelled, comparison.verdict.passed
    (0.93, 512, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monitor.config import GateConfig
from monitor.records import ShadowPair
from retrain.evaluation import Verdict, decide, metrics
from retrain.significance import gain_interval


@dataclass(frozen=True, slots=True)
class Comparison:
    """What the shadow and the champion did on the same requests."""

    rows: int
    agreement: float | None
    """Classification: share of rows where both predicted the same class. Regression: None."""
    mean_abs_difference: float | None
    """Regression: mean absolute difference of the two predictions. Classification: None."""
    estimated: dict[str, float | None]
    """``champion`` and ``shadow``: mean top-class probability, None without probabilities."""
    labelled: int
    champion: dict[str, float] | None
    shadow: dict[str, float] | None
    verdict: Verdict | None
    """The gate on the labelled rows, shadow as challenger (None before any label)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the API, the stage record and the webhook event."""
        return {
            "rows": self.rows,
            "agreement": self.agreement,
            "mean_abs_difference": self.mean_abs_difference,
            "estimated": self.estimated,
            "labelled": self.labelled,
            "champion": self.champion,
            "shadow": self.shadow,
            "verdict": None if self.verdict is None else {"reason": self.verdict.reason, **self.verdict.as_dict()},
        }


def compare(pairs: Sequence[ShadowPair], task: str, gate: GateConfig) -> Comparison:
    """The comparison of ``pairs`` under the service's ``task`` and the retrain ``gate``."""
    from monitor.drift.reference import value_key

    classification = task == "classification"
    agreement = difference = None
    if pairs and classification:
        agreement = sum(value_key(p.prediction) == value_key(p.champion_prediction) for p in pairs) / len(pairs)
    elif pairs:
        difference = sum(abs(float(p.prediction) - float(p.champion_prediction)) for p in pairs) / len(pairs)
    estimated = {
        "champion": _confidence([p.champion_probabilities for p in pairs]),
        "shadow": _confidence([p.probabilities for p in pairs]),
    }
    labelled = [p for p in pairs if p.has_label and p.label is not None]
    champion, shadow, verdict = _realized(labelled, task, gate) if labelled else (None, None, None)
    return Comparison(len(pairs), agreement, difference, estimated, len(labelled), champion, shadow, verdict)


def _realized(
    labelled: Sequence[ShadowPair], task: str, gate: GateConfig
) -> tuple[dict[str, float], dict[str, float], Verdict]:
    """Each model's metrics on the labelled rows, and the gate's verdict with its interval."""
    truth, said, said_before = (
        compared(labelled, name, task) for name in ("label", "prediction", "champion_prediction")
    )
    shadow, champion = metrics(truth, said, task), metrics(truth, said_before, task)
    interval = None
    if gate.confidence > 0:
        interval = gain_interval(gate.metric, task, truth, said, said_before, gate.confidence)
    return champion, shadow, decide(gate, shadow, champion, interval)


def compared(rows: Sequence[Any], name: str, task: str) -> Any:
    """Attribute ``name`` of every row as metrics compare it: class keys, or numbers for regression."""
    import numpy as np

    keyed = task == "classification"
    return np.asarray([comparable(getattr(row, name), keyed) for row in rows], dtype=object if keyed else float)


def comparable(value: Any, keyed: bool) -> Any:
    """A class as checks key it (``True`` and ``1`` alike), or a number for regression."""
    from monitor.drift.reference import value_key

    return value_key(value) if keyed else float(value)


def _confidence(rows: Sequence[dict[str, float] | None]) -> float | None:
    """Mean top-class probability over the rows that have probabilities."""
    tops = [max(r.values()) for r in rows if r]
    return sum(tops) / len(tops) if tops else None
