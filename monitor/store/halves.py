"""Halves of an inference that a payload logger sent apart, kept until they pair.

KServe's InferenceLogger posts an inference's request and its response as two CloudEvents
with one ``ce-id``, in either order (``monitor.cloudevents``). The first to come waits here
until the other does; one that waits past its ``expires_at`` is dropped and counted in
``cloudevent_expiries``, on the way of the next half kept, so the table stays bounded with
no task of its own and the count survives restarts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, case, delete, func, select

from monitor.store import schema as t
from monitor.store.engine import upsert_insert, write_transaction

KINDS = ("request", "response")


@dataclass(frozen=True, slots=True)
class Half:
    """The request or response of one event (``event_id``, from ``component``), its JSON payload and time."""

    service_id: int
    event_id: str
    component: str
    kind: str  # one of KINDS
    ts: float
    data: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class HalfCounts:
    """Of one service: halves waiting for their other half now, and halves dropped unpaired so far."""

    service: str
    pending: int
    expired: int


class HalvesMixin:
    """Store methods for halves waiting to pair."""

    engine: Engine

    def hold_half(self, half: Half, now: float) -> bool:
        """Keep ``half`` until its other half comes: True, or False when it is held already.

        Halves that expired by ``now`` are dropped on the way and counted.
        """
        if half.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {half.kind!r}")
        with write_transaction(self.engine) as conn:
            _sweep(conn, now)
            stmt = upsert_insert(conn.dialect.name, t.cloudevent_halves).values(
                service_id=half.service_id,
                event_id=half.event_id,
                component=half.component,
                kind=half.kind,
                ts=half.ts,
                data=half.data,
                expires_at=half.expires_at,
            )
            return bool(conn.execute(stmt.on_conflict_do_nothing()).rowcount)

    def event_halves(self, service_id: int, event_id: str, component: str, now: float) -> dict[str, Half]:
        """The unexpired halves of one event, by kind."""
        h = t.cloudevent_halves
        query = select(h).where(
            h.c.service_id == service_id, h.c.event_id == event_id, h.c.component == component, h.c.expires_at > now
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r.kind: Half(r.service_id, r.event_id, r.component, r.kind, r.ts, r.data, r.expires_at) for r in rows}

    def drop_halves(self, service_id: int, event_id: str, component: str, kind: str | None = None) -> None:
        """Forget the halves of one event (they paired), or only its half of ``kind``."""
        h = t.cloudevent_halves
        which = [h.c.service_id == service_id, h.c.event_id == event_id, h.c.component == component]
        if kind is not None:
            which.append(h.c.kind == kind)
        with write_transaction(self.engine) as conn:
            conn.execute(delete(h).where(*which))

    def half_counts(self, now: float) -> list[HalfCounts]:
        """Pending and expired halves of every service that has had any (expired ones not yet swept included)."""
        h, e, s = t.cloudevent_halves, t.cloudevent_expiries, t.services
        live = func.sum(case((h.c.expires_at > now, 1), else_=0))
        with self.engine.connect() as conn:
            held = conn.execute(select(h.c.service_id, func.count(), live).group_by(h.c.service_id)).all()
            swept = dict(conn.execute(select(e.c.service_id, e.c.expired)).tuples().all())
            names = dict(conn.execute(select(s.c.id, s.c.name)).tuples().all())
        pending = {sid: int(alive or 0) for sid, _, alive in held}
        expired = Counter({sid: int(n) for sid, n in swept.items()})
        expired.update({sid: int(total) - pending[sid] for sid, total, _ in held})
        ids = sorted(set(pending) | set(expired), key=lambda sid: names.get(sid, ""))
        return [HalfCounts(names[sid], pending.get(sid, 0), expired[sid]) for sid in ids if sid in names]


def _sweep(conn: Connection, now: float) -> None:
    """Drop the halves expired by ``now`` and add them to their service's count."""
    h, e = t.cloudevent_halves, t.cloudevent_expiries
    gone = Counter(conn.execute(delete(h).where(h.c.expires_at <= now).returning(h.c.service_id)).scalars())
    for service_id, count in gone.items():
        stmt = upsert_insert(conn.dialect.name, e).values(service_id=service_id, expired=count)
        conn.execute(stmt.on_conflict_do_update(index_elements=["service_id"], set_={"expired": e.c.expired + count}))
