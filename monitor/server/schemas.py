"""Request and response bodies of the HTTP API (pydantic; they are the OpenAPI schema)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from monitor.config import MAX_SEGMENTS, NAME_PATTERN, FeatureSpec, PositiveDuration, Task, Text, check_quality_target
from monitor.config import ServiceName as Name
from monitor.ingest import INT_BOUND, VALUE_CHARS, scalar_problem
from monitor.records import Feature, HostSample, LabelRecord, PredictionRecord

ID_MAX = 2**31 - 1
"""The largest id a path takes: ids are 32-bit integers in some tables of every backend."""
ObjectId = Annotated[int, Path(ge=1, le=ID_MAX, description="a stored object's id")]
"""The id of a stored object in a path: bounded so that no database is asked for an integer it cannot hold."""
ServiceName = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN, description="a service's name")]
"""A service in a path: named as at registration, so that no other text reaches the store."""
RequestId = Annotated[Text, StringConstraints(min_length=1)]
QueryText = Annotated[Text | None, Query()]
"""A free-text filter in a query string: at most 200 characters, storable on every backend."""
EPOCH_MIN, EPOCH_MAX = -62135596800.0, 253402300799.0
"""Epoch seconds of 0001-01-01 and 9999-12-31T23:59:59 UTC: the times a date can show."""
EpochSeconds = Annotated[float, Field(ge=EPOCH_MIN, le=EPOCH_MAX, description="epoch seconds")]
EpochQuery = Annotated[
    float | None, Query(ge=EPOCH_MIN, le=EPOCH_MAX, allow_inf_nan=False, description="epoch seconds")
]


def _scalar(value: Any) -> Any:
    problem = scalar_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _cell(value: Any) -> Any:
    problem = scalar_problem(value, VALUE_CHARS["text"])  # a reference column may be a text feature
    if problem:
        raise ValueError(problem)
    return value


def prediction_value(value: Any) -> Any:
    """``value`` if it is a scalar or a list of at most 10,000 scalars; ValueError otherwise."""
    kind = type(value)
    if (kind is int and -INT_BOUND <= value < INT_BOUND) or (kind is float and value - value == 0) or kind is bool:
        return value  # the common case without a call: a class or a finite number
    if isinstance(value, list):
        if len(value) > 10_000:
            raise ValueError(f"expected at most 10000 values in a prediction, got {len(value)}")
        return [_scalar(v) for v in value]
    return _scalar(value)


def _label(value: Any) -> Any:
    if value is None:
        raise ValueError("expected a label (number, string or boolean), got null")
    return _scalar(value)


_SCALAR_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "null"}]}
Cell = Annotated[Any, AfterValidator(_cell), WithJsonSchema(_SCALAR_SCHEMA)]
"""A value of a reference data set: a scalar (strings as long as a text feature's)."""
PredictionValue = Annotated[
    Any,
    AfterValidator(prediction_value),
    WithJsonSchema({"anyOf": [*_SCALAR_SCHEMA["anyOf"], {"type": "array", "items": _SCALAR_SCHEMA}]}),
]
Label = Annotated[Any, AfterValidator(_label), WithJsonSchema({"anyOf": _SCALAR_SCHEMA["anyOf"][:3]})]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def epoch(value: datetime | None) -> float:
    """Epoch seconds of ``value`` (UTC when it has no zone); now when None."""
    if value is None:
        return datetime.now(UTC).timestamp()
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class FeatureIn(FeatureSpec):
    """A feature of a service: its name and type (validated as ``services[].features`` in mlwatch.yaml)."""


class ServiceIn(_Body):
    """Register or update a service."""

    name: Name
    task: Task = "classification"
    model_name: Text | None = None
    target: Text | None = None
    features: list[FeatureIn] = Field(default_factory=list, max_length=2000)
    window: PositiveDuration | None = Field(default=None, description="check window: seconds or e.g. '15m', '1h'")
    latency_bound_ms: float | None = Field(default=None, gt=0, le=1e9)
    sample_size: int | None = Field(default=None, ge=100, le=1_000_000)
    drift_share: float | None = Field(
        default=None, gt=0, le=1, description="share of drifted features from which a window has dataset drift"
    )
    quality_target: dict[Annotated[str, StringConstraints(max_length=50)], float] | None = Field(
        default=None,
        max_length=20,
        description="quality the service must keep, by metric (e.g. {'accuracy': 0.9}); decay is measured "
        "against the better of a version's own baseline and this target",
    )
    segments: list[Annotated[Text, StringConstraints(min_length=1)]] | None = Field(
        default=None,
        max_length=MAX_SEGMENTS,
        description="categorical features whose values get their own drift and quality, and whose cohorts are ranked",
    )
    segment_top: int | None = Field(default=None, ge=1, le=100, description="values of each segment column judged")
    segment_min_rows: int | None = Field(default=None, ge=10, le=1_000_000, description="rows a segment needs")

    @field_validator("quality_target")
    @classmethod
    def _target_of_task(cls, target: dict[str, float] | None, info: ValidationInfo) -> dict[str, float] | None:
        return None if target is None else check_quality_target(target, info.data.get("task"))

    def settings(self) -> dict[str, Any]:
        """The per-service settings (``monitor.config.CheckSettings``) this body sets; those it
        leaves out stay as they are."""
        names = ("window", "latency_bound_ms", "sample_size", "drift_share", "quality_target", "segments",
                 "segment_top", "segment_min_rows")  # fmt: skip
        given = {name: getattr(self, name) for name in names}
        return {k: v for k, v in given.items() if v is not None}

    def feature_records(self) -> tuple[Feature, ...]:
        """The features as store records."""
        return tuple(Feature(f.name, f.type, f.drift_method, f.drift_threshold) for f in self.features)


class ServiceOut(BaseModel):
    """A service and how it is doing."""

    name: str
    task: str
    model_name: str | None
    target: str | None
    features: list[dict[str, Any]]
    last_prediction_at: float | None = None
    predictions_last_hour: int = 0
    errors_last_hour: int = 0


LATENCY_MAX_MS = 1e9
"""About 11.6 days: a latency past it is a unit mistake, and sums of such values lose all precision."""
PROBABILITY_MAX = 1 + 1e-9
"""A probability may pass 1 by rounding, not by more."""
Probability = Annotated[float, Field(ge=0, le=PROBABILITY_MAX)]
Probabilities = Annotated[list[Probability], Field(max_length=10_000)]


class PredictionIn(_Body):
    """One logged prediction. ``timestamp`` is ISO 8601 or epoch seconds (UTC if no zone)."""

    request_id: RequestId | None = None
    timestamp: datetime | None = None
    # Values are checked (finite scalars, types per the registered schema) in one pass by
    # ``monitor.ingest.check_batch``: 10,000 per-value validators per batch cost more than ingest.
    features: Annotated[dict[str, Any], WithJsonSchema({"type": "object", "additionalProperties": _SCALAR_SCHEMA})] = (
        Field(default_factory=dict, max_length=5000)
    )
    prediction: PredictionValue = None
    probabilities: Annotated[dict[Text, Probability], Field(max_length=10_000)] | Probabilities | None = None
    latency_ms: float | None = Field(default=None, ge=0, le=LATENCY_MAX_MS)
    model_version: Annotated[Text, StringConstraints(max_length=100)] | None = None
    status: Literal["ok", "error"] = "ok"

    def record(self) -> PredictionRecord:
        """As a store record; a missing request id gets a random one (no de-duplication then)."""
        return PredictionRecord(
            request_id=self.request_id or uuid.uuid4().hex,
            ts=epoch(self.timestamp),
            features=self.features,
            prediction=self.prediction,
            probabilities=self.probabilities,
            latency_ms=self.latency_ms,
            model_version=self.model_version,
            status=self.status,
        )


class PredictionBatch(_Body):
    """A batch of predictions, stored whole or not at all."""

    records: list[PredictionIn] = Field(min_length=1)


class LabelIn(_Body):
    """Ground truth for the prediction with ``request_id``; may arrive days later."""

    request_id: RequestId
    label: Label
    timestamp: datetime | None = None

    def record(self) -> LabelRecord:
        """As a store record."""
        return LabelRecord(self.request_id, self.label, epoch(self.timestamp))


class LabelBatch(_Body):
    """A batch of labels; re-sending one replaces it."""

    labels: list[LabelIn] = Field(min_length=1)


class HostSampleIn(_Body):
    """One sample of the host, a process or a GPU."""

    timestamp: datetime | None = None
    kind: Literal["host", "process", "gpu"] = "host"
    name: Text = ""
    metrics: dict[Text, Annotated[float, Field(ge=-1e18, le=1e18)]] = Field(max_length=500)

    def record(self) -> HostSample:
        """As a store record."""
        return HostSample(epoch(self.timestamp), self.kind, self.name, self.metrics)


class HostSampleBatch(_Body):
    """Samples from the agent on one host."""

    samples: list[HostSampleIn] = Field(min_length=1, max_length=10_000)


class IngestOut(BaseModel):
    """What a batch did."""

    accepted: int
    duplicates: int


class StatsBucket(BaseModel):
    """Traffic of one time bucket."""

    start: float
    model_version: str | None
    count: int
    errors: int
    error_rate: float
    latency_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None


class StatsOut(BaseModel):
    """Traffic statistics of a service over a time range."""

    service: str
    start: float
    end: float
    bucket_seconds: int
    buckets: list[StatsBucket]


class ErrorOut(BaseModel):
    """Every 4xx answer: what was wrong, and where."""

    error: str
    message: str
    errors: list[dict[str, str]] = Field(default_factory=list)
