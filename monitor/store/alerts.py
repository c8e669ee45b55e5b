"""Alerts, silences and alert rules, with their audit entries written in the same transaction.

There is at most one active (pending or firing) alert per fingerprint: the engine reads
the active ones and writes its changes inside one write transaction, serialized across
workers (``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, select, text, update

from monitor.errors import Conflict, NotFound
from monitor.store import schema as t
from monitor.store.codec import loads
from monitor.store.engine import write_transaction
from monitor.store.services import audit_values
from monitor.store.storable import check_text, check_time, json_text

ALERT_STATES = ("pending", "firing", "resolved")
_IDS_PER_QUERY = 1000  # SQLite builds before 3.32 take at most 999 parameters a statement
_ALERT_LOCK = 0x6D6C7761  # "mlwa": the PostgreSQL advisory lock of alert evaluation


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert of one rule and scope, as stored."""

    id: int
    fingerprint: str
    rule: str
    kind: str
    service: str | None
    state: str
    severity: str
    labels: dict[str, str]
    value: float | None
    threshold: float | None
    summary: str
    started_at: float
    fired_at: float | None
    resolved_at: float | None
    last_notified_at: float | None
    acked_by: str | None
    acked_at: float | None
    inhibited_by: int | None = None  # the id of the firing alert that mutes this one (inhibit_rules)


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    """Alerts whose labels match every matcher are not notified between ``starts_at`` and ``ends_at``."""

    id: int
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str

    def active(self, now: float) -> bool:
        """True while the silence is in force."""
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, str]) -> bool:
        """True when every matcher equals the label of that name."""
        return all(labels.get(k) == v for k, v in self.matchers.items())


@dataclass(frozen=True, slots=True)
class StoredRule:
    """An alert rule as stored: its spec (the fields of ``AlertRuleConfig``) and where it came from."""

    name: str
    spec: dict[str, Any]
    source: str  # config or api
    enabled: bool
    updated_at: float


def write_audit(conn: Connection, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
    """Add an audit entry inside ``conn``'s transaction."""
    # Parameters rather than .values(): the compiled statement is cached across the many calls of a tick.
    conn.execute(t.audit_log.insert(), {"ts": time.time(), **audit_values(actor, action, target, details)})


class AlertsMixin:
    """Store methods of alerts, silences and alert rules."""

    engine: Engine

    def lock_alert_evaluation(self, conn: Connection) -> None:
        """Serialize alert evaluation across workers (SQLite's BEGIN IMMEDIATE already does)."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ALERT_LOCK})

    def active_alerts(self, conn: Connection) -> dict[str, AlertRecord]:
        """Pending and firing alerts by fingerprint."""
        rows = conn.execute(select(t.alerts).where(t.alerts.c.state.in_(("pending", "firing"))))
        return {r.fingerprint: _alert(r) for r in rows}

    def insert_alert(self, conn: Connection, values: dict[str, Any]) -> int:
        """Add an alert row; returns its id."""
        row = {**values, "labels": json_text("labels", values.get("labels", {}))}
        return _new_id(conn.execute(t.alerts.insert(), row))

    def update_alert(self, conn: Connection, alert_id: int, values: dict[str, Any]) -> None:
        """Change columns of an alert."""
        conn.execute(update(t.alerts).where(t.alerts.c.id == bindparam("alert_id")), {"alert_id": alert_id, **values})

    def list_alerts(
        self, *, state: str | None = None, service: str | None = None, rule: str | None = None, limit: int = 100
    ) -> list[AlertRecord]:
        """Alerts, newest first, optionally filtered."""
        a = t.alerts
        query = select(a).order_by(a.c.id.desc()).limit(limit)
        for column, value in ((a.c.state, state), (a.c.service, service), (a.c.rule, rule)):
            check_text(column.name, value)
            if value is not None:
                query = query.where(column == value)
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(query)]

    def alerts_by_id(self, conn: Connection, ids: list[int]) -> dict[int, AlertRecord]:
        """The alerts with ``ids`` (those that exist), in ``conn``'s transaction."""
        found: dict[int, AlertRecord] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            found.update((r.id, _alert(r)) for r in conn.execute(select(t.alerts).where(t.alerts.c.id.in_(chunk))))
        return found

    def get_alert(self, alert_id: int) -> AlertRecord:
        """The alert with ``alert_id``; NotFound if none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.alerts).where(t.alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound(f"unknown alert {alert_id}; list alerts with GET /v1/alerts")
        return _alert(row)

    def ack_alert(
        self,
        alert_id: int,
        actor: str,
        now: float,
        comment: str = "",
        announce: Callable[[Connection, AlertRecord], None] | None = None,
    ) -> AlertRecord:
        """Acknowledge an active alert (no more reminders); Conflict if it is already resolved.

        ``announce`` is called with the acknowledged alert inside the same transaction (to
        write its event to the outbox; see ``monitor.alerts.acknowledge``).
        """
        check_text("actor", actor, 200)
        found = self.get_alert(alert_id)
        if found.state == "resolved":
            raise Conflict(f"alert {alert_id} is already resolved; only pending or firing alerts can be acknowledged")
        with write_transaction(self.engine) as conn:
            self.update_alert(conn, alert_id, {"acked_by": actor, "acked_at": now})
            write_audit(conn, actor, "alert.ack", f"alert:{alert_id}", {"rule": found.rule, "comment": comment})
            if announce is not None:
                announce(conn, replace(found, acked_by=actor, acked_at=now))
        return self.get_alert(alert_id)

    def add_silence(
        self, matchers: dict[str, str], *, starts_at: float, ends_at: float, created_by: str, comment: str = ""
    ) -> SilenceRecord:
        """Create a silence; audited."""
        values = {
            "matchers": json_text("matchers", matchers),
            "starts_at": check_time("starts_at", starts_at),
            "ends_at": check_time("ends_at", ends_at),
            "created_by": check_text("created_by", created_by, 200),
            "comment": check_text("comment", comment),
        }
        with write_transaction(self.engine) as conn:
            silence_id = _new_id(conn.execute(t.silences.insert().values(**values)))
            write_audit(conn, created_by, "silence.create", f"silence:{silence_id}", {**values, "matchers": matchers})
        return SilenceRecord(silence_id, dict(matchers), starts_at, ends_at, created_by, comment)

    def list_silences(self, *, active_at: float | None = None, conn: Connection | None = None) -> list[SilenceRecord]:
        """Silences, newest first; only those in force at ``active_at`` when given."""
        s = t.silences
        query = select(s).order_by(s.c.id.desc())
        if active_at is not None:
            query = query.where(s.c.starts_at <= active_at, s.c.ends_at > active_at)
        if conn is not None:
            return [_silence(r) for r in conn.execute(query)]
        with self.engine.connect() as own:
            return [_silence(r) for r in own.execute(query)]

    def end_silence(self, silence_id: int, actor: str, now: float) -> SilenceRecord:
        """End a silence now (it stays listed, with its new end time); audited."""
        s = t.silences
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(s).where(s.c.id == silence_id)).first()
            if row is None:
                raise NotFound(f"unknown silence {silence_id}; list silences with GET /v1/silences")
            ends_at = min(row.ends_at, now)
            conn.execute(update(s).where(s.c.id == silence_id).values(ends_at=ends_at))
            write_audit(conn, actor, "silence.end", f"silence:{silence_id}", {"ends_at": ends_at})
        return SilenceRecord(row.id, loads(row.matchers), row.starts_at, ends_at, row.created_by, row.comment)

    def list_alert_rules(self, *, enabled_only: bool = False) -> list[StoredRule]:
        """Stored alert rules by name."""
        r = t.alert_rules
        query = select(r).order_by(r.c.name)
        if enabled_only:
            query = query.where(r.c.enabled.is_(True))
        with self.engine.connect() as conn:
            return [_rule(row) for row in conn.execute(query)]

    def get_alert_rule(self, name: str) -> StoredRule:
        """The rule called ``name``; NotFound lists the known ones."""
        check_text("name", name)
        with self.engine.connect() as conn:
            row = conn.execute(select(t.alert_rules).where(t.alert_rules.c.name == name)).first()
        if row is None:
            known = ", ".join(r.name for r in self.list_alert_rules()) or "none"
            raise NotFound(f"unknown alert rule {name!r} (known: {known})")
        return _rule(row)

    def put_alert_rule(self, name: str, spec: dict[str, Any], *, actor: str, enabled: bool = True) -> StoredRule:
        """Create or replace an API-managed rule; Conflict for a rule that comes from the config file."""
        r = t.alert_rules
        now = time.time()
        check_text("name", name, 200)
        encoded = json_text("spec", spec)
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(r).where(r.c.name == name)).first()
            if row is not None and row.source == "config":
                raise Conflict(f"alert rule {name!r} comes from mlwatch.yaml; change it there, or use another name")
            values = {"spec": encoded, "source": "api", "enabled": enabled, "updated_at": now}
            if row is None:
                conn.execute(r.insert().values(name=name, **values))
            else:
                conn.execute(update(r).where(r.c.name == name).values(**values))
            write_audit(conn, actor, "alert_rule.put", f"alert_rule:{name}", {"spec": spec, "enabled": enabled})
        return StoredRule(name, spec, "api", enabled, now)

    def delete_alert_rule(self, name: str, *, actor: str) -> None:
        """Delete an API-managed rule; Conflict for a config rule, NotFound for an unknown one."""
        found = self.get_alert_rule(name)
        if found.source == "config":
            raise Conflict(f"alert rule {name!r} comes from mlwatch.yaml; remove it there")
        with write_transaction(self.engine) as conn:
            conn.execute(delete(t.alert_rules).where(t.alert_rules.c.name == name))
            write_audit(conn, actor, "alert_rule.delete", f"alert_rule:{name}", {"spec": found.spec})

    def sync_config_rules(self, specs: dict[str, dict[str, Any]]) -> None:
        """Make the config-sourced rules exactly ``specs`` (name -> spec); API rules of other names stay."""
        r = t.alert_rules
        now = time.time()
        encoded = {
            check_text("alerts", name, 200) or "": json_text(f"alerts.{name}", spec) for name, spec in specs.items()
        }
        with write_transaction(self.engine) as conn:
            stored = {row.name: row for row in conn.execute(select(r))}
            for name, row in stored.items():
                if row.source == "config" and name not in specs:
                    conn.execute(delete(r).where(r.c.name == name))
            for name, spec in specs.items():
                values = {"spec": encoded[name], "source": "config", "enabled": True, "updated_at": now}
                if name not in stored:
                    conn.execute(r.insert().values(name=name, **values))
                elif loads(stored[name].spec) != spec or stored[name].source != "config":
                    conn.execute(update(r).where(r.c.name == name).values(**values))


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _alert(row: Any) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        fingerprint=row.fingerprint,
        rule=row.rule,
        kind=row.kind,
        service=row.service,
        state=row.state,
        severity=row.severity,
        labels=loads(row.labels),
        value=row.value,
        threshold=row.threshold,
        summary=row.summary,
        started_at=row.started_at,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        last_notified_at=row.last_notified_at,
        acked_by=row.acked_by,
        acked_at=row.acked_at,
        inhibited_by=row.inhibited_by,
    )


def _silence(row: Any) -> SilenceRecord:
    return SilenceRecord(row.id, loads(row.matchers), row.starts_at, row.ends_at, row.created_by, row.comment)


def _rule(row: Any) -> StoredRule:
    return StoredRule(row.name, loads(row.spec), row.source, bool(row.enabled), row.updated_at)
