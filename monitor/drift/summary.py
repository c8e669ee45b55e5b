"""The typed outcome of a check, and the JSON shapes stored in ``checks.summary`` / ``results``.

Alerts and the dashboard read these keys; they stay stable (``None``/null when a value
cannot be computed, e.g. quality before labels arrive):

    {"rows", "reference_rows", "drift_share", "dataset_drift", "drifted_features",
     "prediction_drift": {"method", "score", "threshold", "drifted"} | null,
     "target_drift": {...same...} | null, "label_coverage",
     "quality": {metric: value} | null, "estimated_quality": {"accuracy", "f1"} | null,
     "baseline": {metric: value} | null,
     "decay": {metric: {"absolute", "relative"}} | null,
     "estimated_decay": {metric: {"absolute", "relative"}} | null,
     "estimate_error": {metric: abs_error} | null,
     "data_quality": {"missing_share", "new_categories": {feature: [values]},
                      "out_of_range_share": {feature: share}, "type_mismatches": {feature: count}},
     "skipped_features": {feature: why it could not be tested}}

``results`` is ``{"features": [FeatureDrift as dict, ...]}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Metrics = dict[str, float]
Decay = dict[str, dict[str, float | None]]


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

    def verdict(self) -> dict[str, Any]:
        """The ``{"method", "score", "threshold", "drifted"}`` shape of prediction/target drift."""
        return {"method": self.method, "score": self.score, "threshold": self.threshold, "drifted": self.drifted}


@dataclass(frozen=True)
class DataQuality:
    """Data-quality findings of a window against the reference."""

    missing_share: float = 0.0
    new_categories: dict[str, list[str]] = field(default_factory=dict)
    out_of_range_share: dict[str, float] = field(default_factory=dict)
    type_mismatches: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckSummary:
    """Everything one check found (see the module docstring for its JSON)."""

    rows: int
    reference_rows: int
    features: tuple[ColumnDrift, ...] = ()
    drift_share: float = 0.0
    dataset_drift: bool = False
    prediction_drift: ColumnDrift | None = None
    target_drift: ColumnDrift | None = None
    label_coverage: float = 0.0
    quality: Metrics | None = None
    estimated_quality: Metrics | None = None
    baseline: Metrics | None = None
    decay: Decay | None = None
    estimated_decay: Decay | None = None
    estimate_error: Metrics | None = None
    data_quality: DataQuality = field(default_factory=DataQuality)
    skipped: dict[str, str] = field(default_factory=dict)  # feature -> why it was not tested

    @property
    def drifted_features(self) -> list[str]:
        """Names of the features whose test found drift."""
        return [f.name for f in self.features if f.drifted]

    def summary(self) -> dict[str, Any]:
        """The ``checks.summary`` JSON."""
        return {
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "drifted_features": self.drifted_features,
            "prediction_drift": self.prediction_drift.verdict() if self.prediction_drift else None,
            "target_drift": self.target_drift.verdict() if self.target_drift else None,
            "label_coverage": self.label_coverage,
            "quality": self.quality,
            "estimated_quality": self.estimated_quality,
            "baseline": self.baseline,
            "decay": self.decay,
            "estimated_decay": self.estimated_decay,
            "estimate_error": self.estimate_error,
            "data_quality": asdict(self.data_quality),
            "skipped_features": dict(self.skipped),
        }

    def results(self) -> dict[str, Any]:
        """The ``checks.results`` JSON: per-feature verdicts."""
        return {"features": [asdict(f) for f in self.features]}


def empty_summary(reference_rows: int = 0) -> dict[str, Any]:
    """The summary of a window without rows (status ``no_data``): every key, nothing found."""
    return CheckSummary(rows=0, reference_rows=reference_rows).summary()
