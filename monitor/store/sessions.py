"""Dashboard sign-ins kept in the store, so that every replica sees one and ending it is immediate.

The browser holds a random secret; the store keeps only its SHA-256 (``id``), so reading the
table gives no one a working cookie. A session signed in with an API token is live only while
that token is unrevoked and keeps its role: the lookup joins ``api_tokens``, so
``mlwatch token revoke`` ends it on the next request without touching this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, or_, select

from monitor.store import schema as t
from monitor.store.engine import write_transaction

KINDS = ("user", "token", "bootstrap")


@dataclass(frozen=True, slots=True)
class DashboardSession:
    """One sign-in: who, with what role, by which credential (its digest), until when."""

    id: str
    viewer: str
    role: str
    kind: str
    credential: str
    created_at: float
    expires_at: float


class SessionsMixin:
    """Store methods for dashboard sessions."""

    engine: Engine

    def open_dashboard_session(self, session: DashboardSession) -> None:
        """Keep ``session``; sessions that expired before it was made are dropped on the way."""
        if session.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {session.kind!r}")
        sessions = t.dashboard_sessions
        with write_transaction(self.engine) as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at <= session.created_at))
            conn.execute(
                sessions.insert().values(
                    id=session.id,
                    viewer=session.viewer,
                    role=session.role,
                    kind=session.kind,
                    credential=session.credential,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )

    def dashboard_session(self, session_id: str, now: float) -> DashboardSession | None:
        """The live session ``session_id``: unexpired, and for a token one, its token unrevoked with that role."""
        sessions, tokens = t.dashboard_sessions, t.api_tokens
        token_live = and_(tokens.c.revoked.is_(False), tokens.c.role == sessions.c.role)
        query = (
            select(sessions)
            .select_from(sessions.outerjoin(tokens, tokens.c.token_hash == sessions.c.credential))
            .where(sessions.c.id == session_id, sessions.c.expires_at > now)
            .where(or_(sessions.c.kind != "token", token_live))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return DashboardSession(row.id, row.viewer, row.role, row.kind, row.credential, row.created_at, row.expires_at)

    def end_dashboard_session(self, session_id: str) -> bool:
        """Forget session ``session_id`` (log-out); True when it existed."""
        sessions = t.dashboard_sessions
        with write_transaction(self.engine) as conn:
            result = conn.execute(delete(sessions).where(sessions.c.id == session_id))
        return bool(result.rowcount)
