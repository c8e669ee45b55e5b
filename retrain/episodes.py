"""Retrain episodes: a firing drift or decay alert, from when it fires until it resolves.

An ``on_alert`` policy retrains once per episode, not once per check window: a window that
still drifts, or a new champion still judged on rows from before its promotion, belongs to
the episode already handled. Another retrain of the same episode starts only when

- the last one promoted nothing (it failed, was cancelled, or its challenger was rejected), or
- the version it promoted is itself decaying: a ``quality_decay`` rule is breached on the
  service's latest check, made on that version's own rows against its own baseline (drift
  against the reference it replaced does not count).

A challenger waiting for an operator (decision ``pending``) holds the episode until someone
decides; one in shadow (decision ``shadow``) until its shadow ends, and then counts as
promoted if the shadow passed. After a promotion, checks of the new version compare against its own reference
(its training data, kept by the retrain job), so an episode the promotion fixed resolves.

Alerts of one service that fire together (a drift share and an accuracy decay seeing the
same change) are one episode: a retrain records the ids of every alert of the episode
(``episode_alerts``) and its first (``episode``, the alert that opened it), and a job
belongs to the episode while any of those alerts still fires. Which alerts count is the
policy's ``retrain_on``: ``decay`` (realized), ``estimated_decay``, and ``drift`` only when
listed (drift alone alerts, but the model may still be right).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.alerts.engine import load_rules
from monitor.alerts.kinds import get_kind
from monitor.alerts.sources import StoreMetricSource
from retrain.actions import RETRAIN

if TYPE_CHECKING:
    from monitor.config import AlertRuleConfig, RetrainConfig, Settings
    from monitor.records import JobRecord
    from monitor.store import Store
    from monitor.store.alerts import AlertRecord

DRIFT_KINDS = frozenset({"drift_share", "feature_drift", "prediction_drift"})
DECAY_KIND = "quality_decay"
HOLDING_DECISION = "pending"
STAGED_DECISIONS = ("shadow", "canary")
"""A challenger the gate passed into a rollout stage holds its episode until its stages end."""
EPISODE_JOBS = 200
"""Newest retrain jobs of a service matched to an episode (daily caps keep an episode's far fewer)."""


@dataclass(frozen=True, slots=True)
class Episode:
    """The firing alerts of one service that the policy retrains on, oldest first, with their triggers."""

    service: str
    alerts: tuple[AlertRecord, ...]
    triggers: tuple[str, ...]  # drift, decay or estimated_decay, one per alert

    @property
    def id(self) -> int:
        """The id of the alert that opened the episode."""
        return self.alerts[0].id

    def latest(self) -> tuple[AlertRecord, str]:
        """The alert that fired last, and its trigger."""
        index = max(range(len(self.alerts)), key=lambda i: self.alerts[i].fired_at or self.alerts[i].started_at)
        return self.alerts[index], self.triggers[index]

    def owns(self, job: JobRecord) -> bool:
        """True when ``job`` was started automatically for one of this episode's alerts."""
        if job.params.get("trigger") == "manual":
            return False
        ids = job.params.get("episode_alerts") or [job.params.get("alert_id")]
        return any(a.id in ids for a in self.alerts)


class Episodes:
    """Finds a service's open episode and whether it may have another retrain."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def open(self, service: str, policy: RetrainConfig) -> Episode | None:
        """The service's firing alerts that ``policy.retrain_on`` names, as one episode (None: none fire)."""
        rules = self._rules()
        found = []
        for alert in sorted(self.store.list_alerts(state="firing", service=service), key=lambda a: a.id):
            trigger = trigger_of(alert, rules)
            if trigger is not None and trigger in policy.retrain_on:
                found.append((alert, trigger))
        if not found:
            return None
        return Episode(service, tuple(a for a, _ in found), tuple(t for _, t in found))

    def held(self, episode: Episode, now: float) -> str | None:
        """Why ``episode`` gets no further retrain now, or None when it may have one."""
        jobs = self.jobs(episode)
        if not jobs:
            return None
        last = jobs[0]
        if last.active:
            return f"retrain job {last.id} of episode {episode.id} is {last.status}"
        decision = (last.result or {}).get("decision")
        version = str((last.result or {}).get("version"))
        if decision == HOLDING_DECISION:
            return f"version {version} of episode {episode.id} waits for an operator's decision"
        if decision in STAGED_DECISIONS:
            decision, stage = self._after_stages(episode, version)
            if stage is not None:
                return f"version {version} of episode {episode.id} is in {stage}"
        if decision == "promote" and not self.decaying(episode.service, version, now):
            return f"version {version}, promoted in episode {episode.id}, is not decaying"
        return None

    def _after_stages(self, episode: Episode, version: str) -> tuple[str | None, str | None]:
        """(None, the stage) while ``version`` is in a stage; ("promote", None) when its last
        stage passed (a passed shadow starts its canary in the same step); (None, None) else."""
        found = self.store.get_service(episode.service)
        stage = next((s for s in self.store.list_stages(found, limit=20) if s.version == version), None)
        if stage is None:
            return None, None
        if stage.active:
            return None, stage.stage
        return ("promote" if stage.status == "passed" else None), None

    def jobs(self, episode: Episode) -> list[JobRecord]:
        """The episode's automatic retrain jobs, newest first."""
        recent = self.store.list_jobs(service=episode.service, kind=RETRAIN, limit=EPISODE_JOBS)
        return [j for j in recent if episode.owns(j)]

    def decaying(self, service: str, version: str, now: float) -> bool:
        """True when a quality-decay rule is breached on the service's latest check and that check
        is of ``version`` (so the decay is that version's own, against its own baseline)."""
        source = StoreMetricSource(self.store)
        check = source.latest_check(service)
        if check is None or check.model_version != version:
            return False
        kind = get_kind(DECAY_KIND)
        for rule in self._rules().values():
            if rule.kind == DECAY_KIND and rule.service in (None, service):
                seen = kind.evaluate(rule, source, now)
                if any(o.breached and o.scope.get("service") == service for o in seen):
                    return True
        return False

    def _rules(self) -> dict[str, AlertRuleConfig]:
        """Rules by name: the configured ones, then those kept in the store (API rules win on a clash)."""
        rules = {r.name: r for r in self.settings.alerts}
        rules.update({r.name: r for r in load_rules(self.store)})
        return rules


def trigger_of(alert: AlertRecord, rules: dict[str, AlertRuleConfig]) -> str | None:
    """What an alert is to retraining: ``drift``, ``decay`` (realized), ``estimated_decay``, or
    None for alerts that never retrain (latency, errors, no data, resources)."""
    if alert.kind in DRIFT_KINDS:
        return "drift"
    if alert.kind != DECAY_KIND:
        return None
    rule = rules.get(alert.rule)
    estimated = rule is not None and rule.options.get("source") == "estimated"
    return "estimated_decay" if estimated else "decay"
