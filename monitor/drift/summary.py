"""The typed outcome of a check: every column's verdict, and the summary that is stored.

``CheckFindings.summary`` is the ``checks.summary`` record (``monitor.check_summary``);
``results()`` is the ``checks.results`` JSON, ``{"features": [ColumnDrift as dict, ...],
"derived": [ColumnDrift as dict, ...]}``: the model inputs' verdicts, then those of features
derived from text features (descriptors and embeddings, ``monitor.drift.text``), each with
``derived_from`` naming its feature; derived ones count in neither ``drift_share`` nor
``drifted_features``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from monitor.check_summary import CheckSummary, DriftVerdict


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict of one column: Evidently's test, its score and threshold."""

    name: str
    type: str  # numerical, categorical, text
    method: str
    score: float
    threshold: float
    drifted: bool
    reference_mean: float | None = None
    current_mean: float | None = None
    reference_rows: int = 0
    current_rows: int = 0
    derived_from: str | None = None  # the text feature a descriptor or embedding verdict is about

    def verdict(self) -> DriftVerdict:
        """The verdict as a summary keeps it for the prediction and the target."""
        return DriftVerdict(self.method, self.score, self.threshold, self.drifted)


@dataclass(frozen=True)
class CheckFindings:
    """Everything one check found: the summary that is stored, and every column's verdict (its results)."""

    summary: CheckSummary
    features: tuple[ColumnDrift, ...] = ()
    derived: tuple[ColumnDrift, ...] = ()  # verdicts of text descriptors and embeddings

    def results(self) -> dict[str, Any]:
        """The ``checks.results`` JSON: per-feature verdicts, then derived ones."""
        return {"features": [asdict(f) for f in self.features], "derived": [asdict(f) for f in self.derived]}


def drifted(columns: Iterable[ColumnDrift]) -> tuple[str, ...]:
    """Names of the columns whose test found drift."""
    return tuple(c.name for c in columns if c.drifted)


def empty_summary(reference_rows: int = 0) -> CheckSummary:
    """The summary of a window without rows (status ``no_data``): nothing found."""
    return CheckSummary(rows=0, reference_rows=reference_rows)
