"""Tables of the models page: versions side by side, gate decisions, alias history, jobs (plain pandas)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from dashboard.frames import when
from monitor.records import DecisionRecord, JobRecord, StageRecord
from retrain.records import AliasChange, ModelsOverview, ModelVersionInfo

if TYPE_CHECKING:
    from retrain.canary import Health
    from retrain.comparison import Comparison

METRIC_LIMIT = 12
"""At most this many metric columns: the gate's metric and the usual ones first."""
_FIRST_METRICS = ("f1", "accuracy", "precision", "recall", "roc_auc", "log_loss", "rmse", "mae", "r2")


def latest_decisions(decisions: Sequence[DecisionRecord]) -> dict[str, DecisionRecord]:
    """The newest gate decision of each version."""
    found: dict[str, DecisionRecord] = {}
    for d in sorted(decisions, key=lambda d: (d.created_at, d.id)):
        found[d.version] = d
    return found


def metric_names(versions: Sequence[ModelVersionInfo], preferred: str | None = None) -> list[str]:
    """The metric columns to show: the gate's first, then the usual ones, then the rest by name."""
    names = {m for v in versions for m in v.metrics}
    order = [m for m in (preferred, *_FIRST_METRICS) if m in names]
    order += sorted(names - set(order))
    return list(dict.fromkeys(order))[:METRIC_LIMIT]


def versions_table(models: ModelsOverview, preferred_metric: str | None = None) -> pd.DataFrame:
    """One row per version: aliases, origin, gate decision and metrics side by side (champion first)."""
    decisions = latest_decisions(models.decisions)
    metrics = metric_names(models.versions, preferred_metric)
    rows = [_version_row(v, decisions.get(v.version), metrics) for v in models.versions]
    frame = pd.DataFrame(
        rows, columns=["version", "aliases", "created", "trigger", "job", "decision", "gate", *metrics]
    )
    rank = frame["aliases"].map(lambda a: 0 if "champion" in a else 1 if "previous" in a else 2)
    return frame.assign(_rank=rank).sort_values(["_rank", "version"], ascending=[True, False]).drop(columns="_rank")


def _version_row(v: ModelVersionInfo, decision: DecisionRecord | None, metrics: list[str]) -> dict[str, object]:
    return {
        "version": v.version,
        "aliases": ", ".join(v.aliases),
        "created": when(v.created_at),
        "trigger": v.tags.get("mlwatch.trigger"),
        "job": v.tags.get("mlwatch.job_id"),
        "decision": decision.decision if decision else v.tags.get("mlwatch.decision"),
        "gate": decision.reason if decision else v.tags.get("mlwatch.gate"),
        **{m: v.metrics.get(m) for m in metrics},
    }


def history_table(history: Sequence[AliasChange]) -> pd.DataFrame:
    """Alias moves, newest first."""
    rows = [
        {
            "when": when(h.ts),
            "alias": h.alias,
            "from": h.from_version,
            "to": h.to_version,
            "by": h.actor,
            "reason": h.reason,
            "kind": "outside mlwatch" if h.action.endswith("external_change") else "mlwatch",
        }
        for h in history
    ]
    return pd.DataFrame(rows, columns=["when", "alias", "from", "to", "by", "reason", "kind"])


def decisions_table(decisions: Sequence[DecisionRecord]) -> pd.DataFrame:
    """Gate decisions, newest first, with the numbers compared."""
    rows = [
        {
            "when": when(d.created_at),
            "version": d.version,
            "decision": d.decision,
            "job": d.job_id,
            "reason": d.reason,
            "numbers": ", ".join(f"{k}={_short(v)}" for k, v in d.metrics.items()),
        }
        for d in decisions
    ]
    return pd.DataFrame(rows, columns=["when", "version", "decision", "job", "reason", "numbers"])


def jobs_table(jobs: Sequence[JobRecord]) -> pd.DataFrame:
    """Jobs, newest first."""
    rows = [
        {
            "job": j.id,
            "status": j.status,
            "mode": j.params.get("mode"),
            "trigger": j.params.get("trigger"),
            "progress": j.progress,
            "by": j.created_by,
            "created": when(j.created_at),
            "finished": when(j.finished_at),
            "version": (j.result or {}).get("version"),
            "decision": (j.result or {}).get("decision"),
            "error": j.error,
        }
        for j in jobs
    ]
    columns = ["job", "status", "mode", "trigger", "progress", "by", "created", "finished", "version", "decision"]
    return pd.DataFrame(rows, columns=[*columns, "error"])


def job_outcome(job: JobRecord) -> str:
    """One sentence on how a finished job ended: the version it made and what the gate decided."""
    if job.status != "succeeded":
        why = f": {job.error}" if job.error else ""
        return f"Retrain job {job.id} {job.status}{why}."
    result = job.result or {}
    version, decision, reason = result.get("version"), result.get("decision"), result.get("reason")
    made = f"registered version {version}" if version else "registered no version"
    verdict = {
        "promote": f"it is now the champion (was {result.get('champion_version') or 'none'})",
        "pending": "it passed the gate and waits for a promotion",
        "reject": "the gate kept the champion",
    }.get(str(decision), f"decision: {decision}")
    return f"Retrain job {job.id} {made}; {verdict}" + (f" ({reason})." if reason else ".")


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def comparison_table(compared: Comparison) -> pd.DataFrame:
    """Champion and shadow side by side: estimated quality, then each realized metric on the labelled rows."""
    rows = [{"measure": "estimated accuracy", **compared.estimated}]
    names = sorted(set(compared.champion or {}) | set(compared.shadow or {}))
    rows += [
        {"measure": name, "champion": (compared.champion or {}).get(name), "shadow": (compared.shadow or {}).get(name)}
        for name in names
    ]
    return pd.DataFrame(rows, columns=["measure", "champion", "shadow"])


def stages_table(stages: Sequence[StageRecord]) -> pd.DataFrame:
    """Rollout stages, newest first, with how each ended."""
    rows = [
        {
            "started": when(s.started_at),
            "ended": when(s.ended_at) if s.ended_at is not None else None,
            "stage": s.stage,
            "version": s.version,
            "champion": s.champion_version,
            "status": s.status,
            "crashes": s.crashes,
            "reason": s.reason or "",
            "by": s.actor,
        }
        for s in stages
    ]
    columns = ["started", "ended", "stage", "version", "champion", "status", "crashes", "reason", "by"]
    return pd.DataFrame(rows, columns=columns)


def health_table(health: Health) -> pd.DataFrame:
    """A canary's numbers beside the champion's: requests, error rate, latency p95, labelled rows, gate metric."""
    rows = []
    for name, side in (("canary", health.canary), ("champion", health.champion)):
        quality = (side.quality or {}).get(health.metric)
        rows.append(
            {
                "version": f"{side.version} ({name})",
                "requests": side.requests,
                "error rate": side.error_rate,
                "latency p95 (ms)": side.latency_p95_ms,
                "labelled": side.labelled,
                health.metric: quality,
            }
        )
    return pd.DataFrame(
        rows, columns=["version", "requests", "error rate", "latency p95 (ms)", "labelled", health.metric]
    )
