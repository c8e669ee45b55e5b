"""Typed records of retraining: model versions, aliases and what the models page shows (standard library only).

Jobs and gate decisions are records the store keeps, so they live in ``monitor.records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.records import DecisionRecord, StageRecord

MODES = ("retrain", "fine_tune")
TRIGGERS = ("manual", "drift", "decay", "estimated_decay")


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
    canary: str | None = None
    """The version the ``canary`` alias points at while a canary stage runs."""
    stage: StageRecord | None = None
    """The challenger's rollout stage in progress (shadow or canary), if any."""
