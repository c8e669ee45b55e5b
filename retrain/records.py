"""Typed records of retraining: jobs, model versions, decisions (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
MODES = ("retrain", "fine_tune")
TRIGGERS = ("manual", "drift", "decay")


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


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    """One registered version: its aliases, tags and the metrics of its run."""

    version: str
    run_id: str | None
    created_at: float
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True, slots=True)
class AliasChange:
    """One move of an alias, as kept in the audit log (MLflow keeps no history)."""

    ts: float
    actor: str
    action: str  # alias.set or alias.external_change
    alias: str
    from_version: str | None
    to_version: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Promotion:
    """What a promote or rollback did to the aliases."""

    model_name: str
    champion: str
    previous: str | None
    replaced: str | None  # the champion before this change


@dataclass(frozen=True, slots=True)
class ModelsOverview:
    """Everything the models page shows for one service."""

    service: str
    model_name: str
    champion: str | None
    previous: str | None
    versions: tuple[ModelVersionInfo, ...]
    decisions: tuple[DecisionRecord, ...]
    history: tuple[AliasChange, ...]
