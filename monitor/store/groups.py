"""Alert groups of grouped receivers (``group_by``): which alerts each holds and when it is next notified.

A group is one receiver's set of alerts that share the values of its ``group_by`` labels.
The alert engine adds members and flushes due groups inside its evaluation transaction
(serialized across workers), so a worker that restarts finds every group, its members and
its schedule as they were and notifies each once. The timing itself (group_wait,
group_interval, repeat_interval) is decided in ``monitor.alerts.grouping``; here it is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, select, update

from monitor.store import schema as t
from monitor.store.codec import dumps, loads
from monitor.store.outbox import upsert_statement


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """One receiver's group of alerts with equal ``group_by`` labels, and its schedule."""

    id: int
    receiver: str
    key: str
    labels: dict[str, str]
    created_at: float
    next_flush_at: float
    last_notified_at: float | None


@dataclass(frozen=True, slots=True)
class GroupMember:
    """An alert of a group: its state as last told, and the alert event's data."""

    group_id: int
    fingerprint: str
    alert_id: int
    state: str  # firing or resolved
    notified: bool
    data: dict[str, Any]
    updated_at: float


class GroupsMixin:
    """Store methods of alert groups; every one runs in the caller's transaction."""

    engine: Engine

    def alert_groups(self, conn: Connection) -> dict[tuple[str, str], AlertGroup]:
        """Every group by (receiver, key)."""
        return {(g.receiver, g.key): g for g in map(_group, conn.execute(select(t.alert_groups)))}

    def due_alert_groups(self, conn: Connection, now: float) -> list[AlertGroup]:
        """Groups whose notification is due at ``now``, oldest schedule first."""
        g = t.alert_groups
        query = select(g).where(g.c.next_flush_at <= now).order_by(g.c.next_flush_at, g.c.id)
        return [_group(r) for r in conn.execute(query)]

    def insert_alert_group(
        self, conn: Connection, receiver: str, key: str, labels: dict[str, str], now: float, next_flush_at: float
    ) -> AlertGroup:
        """A new, empty group."""
        values = {"receiver": receiver, "group_key": key, "labels": dumps(labels), "created_at": now}
        result = conn.execute(t.alert_groups.insert(), {**values, "next_flush_at": next_flush_at})
        assert result.inserted_primary_key is not None
        return AlertGroup(int(result.inserted_primary_key[0]), receiver, key, labels, now, next_flush_at, None)

    def schedule_alert_groups(self, conn: Connection, schedule: dict[int, float]) -> None:
        """Set ``next_flush_at`` of groups (id -> time)."""
        if schedule:
            g = t.alert_groups
            stmt = update(g).where(g.c.id == bindparam("gid")).values(next_flush_at=bindparam("at"))
            conn.execute(stmt, [{"gid": gid, "at": at} for gid, at in schedule.items()])

    def put_group_members(self, conn: Connection, members: Sequence[GroupMember]) -> None:
        """Add members, or replace the state and data of existing ones (``notified`` is kept)."""
        if not members:
            return
        rows = [{**_member_row(m), "data": dumps(m.data)} for m in members]
        stmt = upsert_statement(conn, t.alert_group_members)
        kept = {c: stmt.excluded[c] for c in ("alert_id", "state", "data", "updated_at")}
        conn.execute(stmt.on_conflict_do_update(index_elements=["group_id", "fingerprint"], set_=kept), rows)

    def group_members(self, conn: Connection, group_ids: list[int]) -> dict[int, list[GroupMember]]:
        """The members of groups ``group_ids``, by group, in the order they joined."""
        m = t.alert_group_members
        found: dict[int, list[GroupMember]] = {gid: [] for gid in group_ids}
        if group_ids:
            query = select(m).where(m.c.group_id.in_(group_ids)).order_by(m.c.group_id, m.c.alert_id)
            for r in conn.execute(query):
                found[r.group_id].append(GroupMember(**{**r._asdict(), "data": loads(r.data)}))
        return found

    def finish_group_notifications(
        self, conn: Connection, now: float, schedule: dict[int, float | None], dropped: Sequence[tuple[int, str]] = ()
    ) -> None:
        """After groups were notified: drop their resolved members and ``dropped`` (group id, fingerprint),
        mark the rest notified, and schedule each group's repeat (id -> time); a group scheduled None is deleted."""
        g, m = t.alert_groups, t.alert_group_members
        ids = list(schedule)
        if not ids:
            return
        conn.execute(delete(m).where(m.c.group_id.in_(ids), m.c.state == "resolved"))
        if dropped:
            gone = bindparam("gid") == m.c.group_id
            conn.execute(
                delete(m).where(gone, m.c.fingerprint == bindparam("fp")), [{"gid": i, "fp": f} for i, f in dropped]
            )
        ended = [gid for gid, at in schedule.items() if at is None]
        if ended:
            conn.execute(delete(m).where(m.c.group_id.in_(ended)))
            conn.execute(delete(g).where(g.c.id.in_(ended)))
        kept = [{"gid": gid, "at": at} for gid, at in schedule.items() if at is not None]
        if kept:
            conn.execute(update(m).where(m.c.group_id.in_([k["gid"] for k in kept])).values(notified=True))
            stmt = update(g).where(g.c.id == bindparam("gid"))
            conn.execute(stmt.values(next_flush_at=bindparam("at"), last_notified_at=now), kept)


def _group(row: Any) -> AlertGroup:
    return AlertGroup(
        row.id, row.receiver, row.group_key, loads(row.labels), row.created_at, row.next_flush_at, row.last_notified_at
    )


def _member_row(m: GroupMember) -> dict[str, Any]:
    return {
        "group_id": m.group_id,
        "fingerprint": m.fingerprint,
        "alert_id": m.alert_id,
        "state": m.state,
        "notified": m.notified,
        "updated_at": m.updated_at,
    }
