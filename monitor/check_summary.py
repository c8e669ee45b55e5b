"""What one drift/quality check found, as the versioned record every reader shares.

The check (``monitor.drift.check``) builds a ``CheckSummary``; the store keeps its
``encode()`` in ``checks.summary`` and gives it back through ``CheckSummary.decode``; alerts,
the dashboard, ``GET /metrics`` and the API read its fields. Standard library only, so the
store may import it. The stored JSON (``GET /v1/checks/{id}`` shows it as ``summary``)::

    {"version", "rows", "reference_rows", "drift_share", "dataset_drift", "drifted_features",
     "prediction_drift": {"method", "score", "threshold", "drifted"} | null,
     "target_drift": {...same...} | null, "label_coverage",
     "quality": {metric: value} | null, "estimated_quality": {"accuracy", "f1"} | null,
     "baseline": {metric: value} | null, "target": {metric: value} | null,
     "decay": {metric: {"absolute", "relative"}} | null,
     "estimated_decay": {metric: {"absolute", "relative"}} | null,
     "estimate_error": {metric: abs_error} | null,
     "data_quality": {"missing_share", "new_categories": {feature: [values]},
                      "out_of_range_share": {feature: share}, "type_mismatches": {feature: count}},
     "skipped_features": {feature: why it could not be tested},
     "drifted_derived": [derived features that drifted: "review:length", "review:embeddings", ...],
     "multivariate": {"drifted", "methods": {"pca" | "classifier": {"method", "score", "lower",
                      "upper", "drifted", "reference_rows", "current_rows", "features"}},
                      "skipped": {method: why it did not run}} | null,
     "segments": {"columns", "metric", "segments": [{"column", "value", "rows", "drift_share",
                  "drifted_features", "reference", "reference_rows", "missing_share",
                  "out_of_range_share", "quality", "quality_source", "labelled"}],
                  "cohorts": [{"segment": {column: value}, "metric", "source", "rows",
                  "quality", "baseline", "baseline_rows", "baseline_source", "drop", "lower",
                  "significant", "explained_by"}], "skipped": {column: why}} | null,
     "attribution": {"drifted", "max_shift", "max_shift_feature", "rank_correlation",
                     "threshold", "top_reference", "top_current", "reference_rows",
                     "current_rows", "features": [{"name", "reference", "current", "shift"}],
                     "skipped": why it was not computed | null} | null}

Null where a value cannot be computed (quality before labels arrive). Decay is "positive =
worse" whichever way the metric runs (``monitor.quality_metrics``). Summaries stored before
``version`` existed are version 1 and decode alike; a key they lack takes its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

SUMMARY_VERSION = 1
"""The version ``encode`` writes; a summary stored without one is version 1."""

COHORT_METRICS = {"classification": "accuracy", "regression": "mae"}
"""The metric segments and cohorts are judged by, per task: a mean of per-row scores (``monitor.drift.cohorts``)."""

Metrics = Mapping[str, float]
Json = dict[str, Any]
"""A JSON object as ``encode`` writes it."""


@dataclass(frozen=True, slots=True)
class DriftVerdict:
    """The drift test of the prediction or the target column."""

    method: str
    score: float
    threshold: float
    drifted: bool

    @classmethod
    def decode(cls, data: Mapping[str, Any] | None) -> DriftVerdict | None:
        """The verdict stored as ``data`` (None stays None)."""
        if not data:
            return None
        return cls(str(data.get("method")), float(data.get("score", 0.0)), float(data.get("threshold", 0.0)),
                   bool(data.get("drifted")))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Change:
    """How much worse a metric is than its baseline: positive is worse; ``relative`` divides by the baseline."""

    absolute: float
    relative: float | None


Decay = Mapping[str, Change]


@dataclass(frozen=True)
class DataQuality:
    """Data-quality findings of a window against the reference."""

    missing_share: float = 0.0
    new_categories: Mapping[str, list[str]] = field(default_factory=dict)
    out_of_range_share: Mapping[str, float] = field(default_factory=dict)
    type_mismatches: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JointDrift:
    """The verdict of one multivariate method (``monitor.drift.multivariate``)."""

    method: str
    score: float  # mean reconstruction error (pca) or ROC AUC (classifier)
    lower: float | None  # drift below this too (pca only)
    upper: float  # drift above this
    drifted: bool
    reference_rows: int
    current_rows: int
    features: int

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> JointDrift:
        """The verdict stored as ``data``."""
        lower = data.get("lower")
        return cls(
            method=str(data.get("method", "")),
            score=float(data.get("score", 0.0)),
            lower=None if lower is None else float(lower),
            upper=float(data.get("upper", 0.0)),
            drifted=bool(data.get("drifted")),
            reference_rows=int(data.get("reference_rows", 0)),
            current_rows=int(data.get("current_rows", 0)),
            features=int(data.get("features", 0)),
        )


@dataclass(frozen=True)
class MultivariateSummary:
    """What the multivariate methods found: each one's verdict, and why any did not run."""

    drifted: bool = False
    methods: Mapping[str, JointDrift] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def decode(cls, data: Mapping[str, Any] | None) -> MultivariateSummary | None:
        """The summary stored as ``data`` (None stays None)."""
        if data is None:
            return None
        methods = {name: JointDrift.decode(found) for name, found in (data.get("methods") or {}).items()}
        return cls(bool(data.get("drifted")), methods, dict(data.get("skipped") or {}))


@dataclass(frozen=True, slots=True)
class FeatureAttribution:
    """One feature's share of the model's permutation importance, on the reference and now."""

    name: str
    reference: float
    current: float
    shift: float  # |current - reference|

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> FeatureAttribution:
        """The share stored as ``data``."""
        return cls(
            str(data.get("name", "")),
            float(data.get("reference", 0.0)),
            float(data.get("current", 0.0)),
            float(data.get("shift", 0.0)),
        )


@dataclass(frozen=True)
class AttributionSummary:
    """Attribution drift (``monitor.drift.attribution``): how the model's reliance on each
    feature moved, or why it was not computed (``skipped``)."""

    drifted: bool = False
    max_shift: float = 0.0
    max_shift_feature: str | None = None
    rank_correlation: float | None = None
    threshold: float = 0.1
    top_reference: tuple[str, ...] = ()
    top_current: tuple[str, ...] = ()
    reference_rows: int = 0
    current_rows: int = 0
    features: tuple[FeatureAttribution, ...] = ()
    skipped: str | None = None

    @classmethod
    def decode(cls, data: Mapping[str, Any] | None) -> AttributionSummary | None:
        """The summary stored as ``data`` (None stays None)."""
        if data is None:
            return None
        correlation = data.get("rank_correlation")
        return cls(
            drifted=bool(data.get("drifted")),
            max_shift=float(data.get("max_shift") or 0.0),
            max_shift_feature=data.get("max_shift_feature"),
            rank_correlation=None if correlation is None else float(correlation),
            threshold=float(data.get("threshold") or 0.1),
            top_reference=tuple(data.get("top_reference") or ()),
            top_current=tuple(data.get("top_current") or ()),
            reference_rows=int(data.get("reference_rows") or 0),
            current_rows=int(data.get("current_rows") or 0),
            features=tuple(FeatureAttribution.decode(f) for f in data.get("features") or ()),
            skipped=data.get("skipped"),
        )


@dataclass(frozen=True, slots=True)
class SegmentFinding:
    """One value of one segment column in a window: its rows, drift, data quality and quality."""

    column: str
    value: str
    rows: int
    drift_share: float | None = None  # over the features tested in this segment (None: none could be)
    drifted_features: tuple[str, ...] = ()
    reference: str = "whole"  # "segment": compared with the reference's rows of this value; "whole": all of it
    reference_rows: int = 0
    missing_share: float = 0.0
    out_of_range_share: float = 0.0  # of the numerical cells, outside the reference's range
    quality: float | None = None  # the segments' metric (``SegmentsSummary.metric``)
    quality_source: str | None = None  # "realized" (labels) or "estimated" (probabilities)
    labelled: int = 0

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> SegmentFinding:
        """The finding stored as ``data``."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "drifted_features": tuple(data.get("drifted_features") or ())})


@dataclass(frozen=True, slots=True)
class Cohort:
    """A segment value (or a pair of values of two columns) and how far its quality fell below its own baseline.

    ``drop`` is positive when worse; ``lower`` is the low end of its 95% interval, and
    ``significant`` says that bound is above zero: what cohorts are ranked by, so that a
    handful of unlucky rows does not outrank a large cohort's real fall.
    """

    segment: Mapping[str, str]
    metric: str
    source: str  # "realized" or "estimated"
    rows: int
    quality: float
    baseline: float
    baseline_rows: int
    baseline_source: str  # "reference" or "first_window"
    drop: float
    lower: float
    significant: bool
    explained_by: str | None = None  # a pair whose fall the fall of this single value (its label) explains

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Cohort:
        """The cohort stored as ``data``."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "segment": dict(data.get("segment") or {})})

    @property
    def label(self) -> str:
        """``region=eu`` or ``channel=web,region=eu``: the alert scope's ``segment``."""
        return segment_label(self.segment)


def segment_label(segment: Mapping[str, str]) -> str:
    """A segment as one stable text, its columns sorted: ``channel=web,region=eu``."""
    return ",".join(f"{column}={value}" for column, value in sorted(segment.items()))


@dataclass(frozen=True)
class SegmentsSummary:
    """Per-segment findings of a check and its cohorts, worst first (``monitor.drift.segments``)."""

    columns: tuple[str, ...] = ()
    metric: str | None = None
    segments: tuple[SegmentFinding, ...] = ()
    cohorts: tuple[Cohort, ...] = ()  # ranked: significant falls first, by the low end of the drop
    skipped: Mapping[str, str] = field(default_factory=dict)

    def segment(self, column: str, value: str) -> SegmentFinding | None:
        """The finding of ``column=value``, if that value was judged."""
        return next((s for s in self.segments if s.column == column and s.value == value), None)

    def cohort(self, segment: Mapping[str, str]) -> Cohort | None:
        """The cohort of ``segment`` (one or two columns), if it was ranked."""
        return next((c for c in self.cohorts if dict(c.segment) == dict(segment)), None)

    @classmethod
    def decode(cls, data: Mapping[str, Any] | None) -> SegmentsSummary | None:
        """The summary stored as ``data`` (None stays None)."""
        if data is None:
            return None
        return cls(
            columns=tuple(data.get("columns") or ()),
            metric=data.get("metric"),
            segments=tuple(SegmentFinding.decode(s) for s in data.get("segments") or ()),
            cohorts=tuple(Cohort.decode(c) for c in data.get("cohorts") or ()),
            skipped=dict(data.get("skipped") or {}),
        )


@dataclass(frozen=True)
class CheckSummary:
    """Everything one check found, as stored (see the module docstring for its JSON)."""

    rows: int = 0
    reference_rows: int = 0
    drift_share: float = 0.0
    dataset_drift: bool = False
    drifted_features: tuple[str, ...] = ()
    prediction_drift: DriftVerdict | None = None
    target_drift: DriftVerdict | None = None
    label_coverage: float = 0.0
    quality: Metrics | None = None
    estimated_quality: Metrics | None = None
    baseline: Metrics | None = None
    """What decay is measured against: the version's own baseline, raised to ``target`` per metric."""
    target: Metrics | None = None
    """The service's quality target the baseline was raised to (None: the version's own baseline alone)."""
    decay: Decay | None = None
    estimated_decay: Decay | None = None
    estimate_error: Metrics | None = None
    data_quality: DataQuality = field(default_factory=DataQuality)
    skipped_features: Mapping[str, str] = field(default_factory=dict)
    drifted_derived: tuple[str, ...] = ()
    multivariate: MultivariateSummary | None = None
    segments: SegmentsSummary | None = None
    attribution: AttributionSummary | None = None
    version: int = SUMMARY_VERSION

    def decay_of(self, metric: str, *, estimated: bool = False) -> Change | None:
        """The realized (or ``estimated``) decay of ``metric``, when the check measured it."""
        found = self.estimated_decay if estimated else self.decay
        return (found or {}).get(metric)

    def encode(self) -> Json:
        """The ``checks.summary`` JSON."""
        out = asdict(self)
        out["drifted_features"], out["drifted_derived"] = list(self.drifted_features), list(self.drifted_derived)
        return {"version": out.pop("version"), **out}

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> CheckSummary:
        """The summary stored as ``data``, by this version or an earlier one (missing keys take their defaults)."""
        version = int(data.get("version", 1))
        if version > SUMMARY_VERSION:
            raise ValueError(f"expected a check summary of version {SUMMARY_VERSION} or older, got version {version}")
        return cls(
            rows=int(data.get("rows") or 0),
            reference_rows=int(data.get("reference_rows") or 0),
            drift_share=float(data.get("drift_share") or 0.0),
            dataset_drift=bool(data.get("dataset_drift")),
            drifted_features=tuple(data.get("drifted_features") or ()),
            prediction_drift=DriftVerdict.decode(data.get("prediction_drift")),
            target_drift=DriftVerdict.decode(data.get("target_drift")),
            label_coverage=float(data.get("label_coverage") or 0.0),
            quality=data.get("quality"),
            estimated_quality=data.get("estimated_quality"),
            baseline=data.get("baseline"),
            target=data.get("target"),
            decay=_decay(data.get("decay")),
            estimated_decay=_decay(data.get("estimated_decay")),
            estimate_error=data.get("estimate_error"),
            data_quality=DataQuality(**(data.get("data_quality") or {})),
            skipped_features=dict(data.get("skipped_features") or {}),
            drifted_derived=tuple(data.get("drifted_derived") or ()),
            multivariate=MultivariateSummary.decode(data.get("multivariate")),
            segments=SegmentsSummary.decode(data.get("segments")),
            attribution=AttributionSummary.decode(data.get("attribution")),
        )


def _decay(data: Mapping[str, Mapping[str, float | None]] | None) -> dict[str, Change] | None:
    if data is None:
        return None
    return {name: Change(float(found.get("absolute") or 0.0), found.get("relative")) for name, found in data.items()}
