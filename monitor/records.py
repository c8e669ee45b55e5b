"""Typed records that cross module boundaries (standard library only, so the SDK can share them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.check_summary import CheckSummary

FeatureValue = float | int | str | bool | None
Prediction = float | int | str | bool | list[Any] | None


@dataclass(frozen=True, slots=True)
class Feature:
    """A registered input of a service."""

    name: str
    type: str = "numerical"  # numerical, categorical, text
    drift_method: str | None = None
    drift_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Service:
    """A monitored service as stored; ``config`` holds its check settings as JSON, read through
    ``monitor.config.CheckSettings.of(service)``."""

    id: int
    name: str
    task: str
    model_name: str | None
    target: str | None
    features: tuple[Feature, ...]
    config: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    def feature(self, name: str) -> Feature | None:
        """The registered feature called ``name``, if any."""
        return next((f for f in self.features if f.name == name), None)


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One logged prediction, as the SDK, proxy and ingest send it."""

    request_id: str
    ts: float
    features: dict[str, FeatureValue]
    prediction: Prediction = None
    probabilities: dict[str, float] | list[float] | None = None
    latency_ms: float | None = None
    model_version: str | None = None
    status: str = "ok"


@dataclass(frozen=True, slots=True)
class PredictionColumns:
    """A batch of predictions held column by column, as a batch file is read: one list per
    field, all as long as ``request_ids``; None for a column the batch does not have (each
    row then gets the record's default). ``status`` is "ok" and ``probabilities`` None."""

    request_ids: list[str]
    ts: list[float]
    features: dict[str, list[FeatureValue]]
    prediction: list[Prediction] | None = None
    latency_ms: list[float | None] | None = None
    model_version: list[str | None] | None = None

    def __post_init__(self) -> None:
        rows = len(self.request_ids)
        columns: dict[str, list[Any] | None] = {"ts": self.ts, "prediction": self.prediction}
        columns.update({"latency_ms": self.latency_ms, "model_version": self.model_version})
        columns.update({f"features.{name}": values for name, values in self.features.items()})
        for name, values in columns.items():
            if values is not None and len(values) != rows:
                raise ValueError(f"column {name} has {len(values)} values for {rows} request ids")

    def records(self) -> list[PredictionRecord]:
        """The rows as records (slower: a record and a features dict each)."""
        rows = len(self.request_ids)
        names = list(self.features)
        cells = zip(*self.features.values(), strict=True) if names else ((),) * rows
        none = [None] * rows
        return [
            PredictionRecord(request_id, ts, dict(zip(names, row, strict=True)), prediction, None, latency, version)
            for request_id, ts, row, prediction, latency, version in zip(
                self.request_ids,
                self.ts,
                cells,
                self.prediction or none,
                self.latency_ms or none,
                self.model_version or none,
                strict=True,
            )
        ]


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """Ground truth for an earlier prediction, joined by request id."""

    request_id: str
    label: Prediction
    ts: float


@dataclass(frozen=True, slots=True)
class HostSample:
    """One sample from the agent: the host, a process or a GPU."""

    ts: float
    kind: str  # host, process, gpu
    name: str
    metrics: dict[str, float]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a batch did: rows stored, and rows already present (re-sent)."""

    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class TrafficBucket:
    """Traffic of one time bucket (and model version, when split by it)."""

    start: float
    model_version: str | None
    count: int
    errors: int
    latency_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None

    @property
    def error_rate(self) -> float:
        """Errors over requests, 0 when there were none."""
        return self.errors / self.count if self.count else 0.0


@dataclass(frozen=True, slots=True)
class StoredPrediction:
    """A prediction read back from the store, with its label when one has arrived."""

    request_id: str
    ts: float
    features: dict[str, FeatureValue]
    prediction: Prediction
    probabilities: dict[str, float] | list[float] | None
    latency_ms: float | None
    model_version: str | None
    status: str
    label: Prediction = None
    has_label: bool = False


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited action."""

    id: int
    ts: float
    actor: str
    action: str
    target: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One drift/quality check of a service's window, as stored.

    ``summary`` is what it found (``monitor.check_summary``: drift share, quality, decay,
    estimates, data quality); ``results`` holds ``{"features": [...]}`` per feature.
    """

    id: int
    service_id: int
    window_start: float
    window_end: float
    created_at: float
    model_version: str | None
    status: str  # ok, no_data, error
    trigger: str  # schedule, manual, api
    summary: CheckSummary
    results: dict[str, Any]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceInfo:
    """A stored reference data set (without its data)."""

    service_id: int
    model_version: str  # '' = any version
    created_at: float
    row_count: int
    source: str


@dataclass(frozen=True, slots=True)
class ReferenceData:
    """A reference ready to keep: its rows as Parquet and the column statistics computed from them."""

    parquet: bytes
    row_count: int
    stats: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SampledColumns:
    """A uniform sample of a window, column by column (the drift check's read path)."""

    features: list[dict[str, FeatureValue]]
    predictions: list[Prediction]
    probabilities: list[dict[str, float] | list[float] | None]
    labels: list[Prediction]
    has_label: list[bool]
    model_versions: list[str | None]

    def __len__(self) -> int:
        return len(self.features)


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token as listed: never its hash, which stays in the store."""

    id: int
    name: str
    role: str
    created_at: float
    last_used_at: float | None
    revoked: bool


JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored: what to do, who asked, and how far it got."""

    id: int
    kind: str
    service: str | None
    status: str
    params: dict[str, Any]
    progress: float
    log: str
    result: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    claimed_by: str | None = None
    cancel_requested: bool = False

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """The gate's verdict on one model version, with the numbers it compared."""

    id: int
    service: str
    model_name: str
    version: str
    job_id: int | None
    decision: str  # promote, reject, pending
    metrics: dict[str, Any]
    reason: str
    created_at: float


STAGE_STATUSES = ("active", "passed", "failed", "expired", "crashed", "aborted", "rolled_back")
"""How a rollout stage stands: ``active`` until it ends, then why it ended (``rolled_back``: a
canary that breached a guard)."""


@dataclass(frozen=True, slots=True)
class StageRecord:
    """A challenger's time in a rollout stage (``shadow`` or ``canary``), and how it ended.

    ``details`` holds a canary's ``share`` while it runs, and what the stage was judged on once it ended."""

    id: int
    service: str
    stage: str
    version: str
    champion_version: str | None
    status: str
    started_at: float
    ended_at: float | None
    reason: str | None
    actor: str
    crashes: int
    details: dict[str, Any]

    @property
    def active(self) -> bool:
        """True until the stage ends."""
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class ShadowRow:
    """One request the champion answered and the shadow scored too, as ``mlwatch serve`` logs it."""

    request_id: str
    ts: float
    version: str
    prediction: Any
    probabilities: dict[str, float] | None
    latency_ms: float | None
    champion_version: str | None
    champion_prediction: Any
    champion_probabilities: dict[str, float] | None = None


@dataclass(frozen=True, slots=True)
class ShadowPair:
    """A stored shadow row with the request's label, when one has come."""

    request_id: str
    prediction: Any
    probabilities: dict[str, float] | None
    champion_prediction: Any
    champion_probabilities: dict[str, float] | None
    label: Any
    has_label: bool
