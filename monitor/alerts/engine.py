"""One evaluation tick: every enabled rule against fresh metrics, changes applied in one transaction.

    >>> AlertEngine(store, settings).tick()
    TickResult(rules=12, observations=40, changes=1, events=['evt_...'])

Rules come from the store (config rules are synced there at start, API rules live there),
so an edit through the API takes effect at the next tick. Alert rows, their audit entries
and their outbox rows are written together: an alert fires exactly when its notification
exists. Deduplication is by fingerprint in the store, so it holds across ticks, restarts
and several workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from monitor.alerts.grouping import Grouper, is_grouped
from monitor.alerts.inhibition import Inhibitor, Source
from monitor.alerts.kinds import get_kind
from monitor.alerts.lifecycle import Change, alert_labels, decide, resolve
from monitor.alerts.observations import Observation, fingerprint
from monitor.alerts.sources import MetricSource, StoreMetricSource
from monitor.config import AlertRuleConfig, Settings, WebhookConfig
from monitor.store.alerts import AlertRecord, SilenceRecord, write_audit
from monitor.store.outbox import OutboxEntry
from monitor.webhooks.events import Event, new_event, outbox_entries
from monitor.webhooks.routing import receivers_for

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from monitor.store import Store

log = logging.getLogger("mlwatch.alerts")
ACTOR = "alert-engine"


@dataclass(frozen=True, slots=True)
class Step:
    """One observation of one rule this tick, with the active alert of its fingerprint."""

    rule: AlertRuleConfig
    obs: Observation
    current: AlertRecord | None

    @property
    def labels(self) -> dict[str, str]:
        """The labels the alert has (or would have): what silences and inhibit rules match."""
        return alert_labels(self.rule, self.obs.scope)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one step did: the alert, its state after the tick, its events, whether anything was written."""

    alert_id: int
    state: str
    events: list[Event]
    changed: bool


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick did."""

    rules: int
    observations: int
    changes: int
    events: list[str] = field(default_factory=list)


def config_rule_specs(settings: Settings) -> dict[str, dict[str, Any]]:
    """The configured rules as stored specs, by name."""
    return {r.name: r.model_dump(mode="json", by_alias=True) for r in settings.alerts}


def load_rules(store: Store, known: dict[tuple[str, float], AlertRuleConfig] | None = None) -> list[AlertRuleConfig]:
    """Enabled stored rules (validated once per stored version when ``known`` is kept); bad ones are logged."""
    cache = {} if known is None else known
    rules = []
    for stored in store.list_alert_rules(enabled_only=True):
        key = (stored.name, stored.updated_at)
        if key not in cache:
            try:
                cache[key] = AlertRuleConfig.model_validate(stored.spec)
            except ValidationError as exc:
                log.error("alert rule %s is invalid and skipped: %s", stored.name, exc)
                continue
        rules.append(cache[key])
    return rules


class AlertEngine:
    """Evaluates alert rules and moves alerts through their lifecycle."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        source: Callable[[Store], MetricSource] = StoreMetricSource,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.source = source
        self._parsed: dict[tuple[str, float], AlertRuleConfig] = {}
        self.inhibitor = Inhibitor(settings.inhibit_rules)
        self.grouper = Grouper(store, settings)
        store.sync_config_rules(config_rule_specs(settings))

    def tick(self, now: float | None = None) -> TickResult:
        """Evaluate every rule once and apply the resulting changes."""
        now = self.clock() if now is None else now
        rules = load_rules(self.store, self._parsed)
        seen = self.observe(rules, now)
        with self.store.write_transaction() as conn:
            self.store.lock_alert_evaluation(conn)
            events, changes = self.apply(conn, rules, seen, now)
        return TickResult(len(rules), sum(len(o) for _, o in seen), changes, events)

    def observe(self, rules: list[AlertRuleConfig], now: float) -> list[tuple[AlertRuleConfig, list[Observation]]]:
        """Each rule's observations; a rule that fails to evaluate is logged and left out."""
        source = self.source(self.store)
        seen = []
        for rule in rules:
            try:
                seen.append((rule, get_kind(rule.kind).evaluate(rule, source, now)))
            except Exception:  # one broken rule (or metric) must not stop the others
                log.exception("alert rule %s could not be evaluated; its alerts keep their state", rule.name)
        return seen

    def apply(
        self,
        conn: Connection,
        rules: list[AlertRuleConfig],
        seen: list[tuple[AlertRuleConfig, list[Observation]]],
        now: float,
    ) -> tuple[list[str], int]:
        """Write every change in ``conn``'s transaction; returns event ids and the number of changes.

        Alerts that can inhibit others (``inhibit_rules`` sources) are decided first, so the
        rest see which of them fire after this tick.
        """
        active = self.store.active_alerts(conn)
        silences = self.store.list_silences(active_at=now, conn=conn)
        steps = [Step(rule, obs, active.pop(fingerprint(rule.name, obs.scope), None)) for rule, o in seen for obs in o]
        names = {r.name for r in rules}
        # firing sources whose rule was not evaluated this tick (it failed) still inhibit
        sources: list[Source] = [
            (a.id, a.labels)
            for a in active.values()
            if a.state == "firing" and a.rule in names and self.inhibitor.is_source(a.labels)
        ]
        events: list[Event] = []
        changes = 0
        for is_source, step in self._sources_first(steps):
            inhibited_by = None if is_source else self.inhibitor.inhibitor(step.labels, sources)
            outcome = self.step(conn, step, _silenced(silences, step.labels), inhibited_by, now)
            if outcome is None:
                continue
            events += outcome.events
            changes += outcome.changed
            if is_source and outcome.state == "firing":
                sources.append((outcome.alert_id, step.labels))
        for orphan in (a for a in active.values() if a.rule not in names):
            change = resolve(
                orphan, now, silenced=_silenced(silences, orphan.labels), summary="the rule was removed or disabled"
            )
            events += self.write(conn, None, {}, orphan, change, now)[1]
            changes += 1
        return self.notify(conn, events, now), changes

    def _sources_first(self, steps: list[Step]) -> list[tuple[bool, Step]]:
        """The steps, those that can inhibit first, each with whether it can."""
        if not self.inhibitor.rules:
            return [(False, s) for s in steps]
        marked = [(self.inhibitor.is_source(s.labels), s) for s in steps]
        return [m for m in marked if m[0]] + [m for m in marked if not m[0]]

    def step(
        self, conn: Connection, step: Step, silenced: bool, inhibited_by: int | None, now: float
    ) -> Outcome | None:
        """Decide and write one observation (an inhibited alert is treated as silenced); None when no alert exists.

        Unchanged alerts have an outcome too, so that firing sources are known.
        """
        current = step.current
        change = decide(step.rule, step.obs, current, now, silenced=silenced or inhibited_by is not None)
        was = current.inhibited_by if current is not None else None
        if change is not None and (change.insert or was != inhibited_by):
            change = replace(change, values={**change.values, "inhibited_by": inhibited_by})
        elif change is None and current is not None and was != inhibited_by:
            change = Change({"inhibited_by": inhibited_by})
        if change is None:
            return None if current is None else Outcome(current.id, current.state, [], changed=False)
        alert_id, events = self.write(conn, step.rule, step.obs.scope, current, change, now)
        state = change.values.get("state") or (current.state if current is not None else "pending")
        return Outcome(alert_id, str(state), events, changed=True)

    def notify(self, conn: Connection, events: list[Event], now: float) -> list[str]:
        """Write the outbox rows of ``events``: at once for ungrouped receivers; grouped ones through their group.

        Due groups are flushed in the same transaction. Returns the ids of the events sent or grouped.
        """
        entries: list[OutboxEntry] = []
        grouped: list[tuple[Event, WebhookConfig]] = []
        sent: list[str] = []
        for event in events:
            hooks = self.routes(event)
            entries += outbox_entries(self.settings, event, [h for h in hooks if not is_grouped(h)])
            grouped += [(event, h) for h in hooks if is_grouped(h)]
            sent += [event.id] if hooks else []
        self.grouper.add(conn, grouped, now)
        flushed = self.grouper.flush(conn, now)
        self.store.enqueue_deliveries(entries + flushed, conn=conn)  # one batch, same transaction as the alerts
        return sent + list(dict.fromkeys(e.event_id for e in flushed))

    def routes(self, event: Event) -> list[WebhookConfig]:
        """The receivers of an alert event."""
        return receivers_for(self.settings.webhooks, event)

    def write(
        self,
        conn: Connection,
        rule: AlertRuleConfig | None,
        scope: dict[str, str],
        current: AlertRecord | None,
        change: Change,
        now: float,
    ) -> tuple[int, list[Event]]:
        """Write one change and its audit entry; returns the alert's id and the event to send, if any."""
        if current is None:
            assert rule is not None
            fp = fingerprint(rule.name, scope)
            alert_id = self.store.insert_alert(conn, {"fingerprint": fp, **change.values})
        else:
            fp, alert_id = current.fingerprint, current.id
            self.store.update_alert(conn, alert_id, change.values)
        data = _event_data(alert_id, fp, current, change)
        if rule is not None:  # how long a receiver may hold it firing without a re-post (Alertmanager's endsAt)
            data["repeat_interval"] = rule.repeat_interval
        if change.audit:
            write_audit(conn, ACTOR, change.audit, f"alert:{alert_id}", data)
        if change.event is None:
            return alert_id, []
        labels = {k: str(v) for k, v in data["labels"].items()}
        return alert_id, [new_event(change.event, data, severity=data["severity"], labels=labels, clock=lambda: now)]


def _silenced(silences: list[SilenceRecord], labels: dict[str, str]) -> bool:
    return any(s.matches(labels) for s in silences)


def _event_data(alert_id: int, fp: str, current: AlertRecord | None, change: Change) -> dict[str, Any]:
    """The alert as receivers see it: stored columns overlaid with this change."""
    base = asdict(current) if current is not None else {}
    data = {**base, **change.values, "id": alert_id, "fingerprint": fp}
    if change.details:
        data["details"] = change.details
    return data
