"""Named exclusive locks and leases held in the store, so they serialize across processes and hosts.

A lock: PostgreSQL takes a transaction-scoped advisory lock on a hash of the name; SQLite
takes the database's write lock (``BEGIN IMMEDIATE``). Either way the lock is released when
the transaction ends, and work done on the yielded connection commits atomically with it.

A lease is for work too long to hold a lock through (on SQLite the lock stops every
writer): a row that names its holder and expires, so the work of a holder that died is
taken up again once the lease runs out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, delete, text

from monitor.store import schema as t
from monitor.store.engine import upsert_insert, write_transaction


class LocksMixin:
    """``store.exclusive(name)``: a transaction that holds the lock called ``name``."""

    engine: Engine

    @contextmanager
    def exclusive(self, name: str) -> Iterator[Connection]:
        """Hold the lock ``name`` for the duration of the block; yields the transaction's connection."""
        with write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name})
            yield conn

    def take_lease(self, name: str, holder: str, seconds: float, now: float) -> bool:
        """Claim ``name`` for ``seconds`` from ``now``: true unless someone else holds it unexpired."""
        leases = t.leases
        with write_transaction(self.engine) as conn:
            stmt = upsert_insert(conn.dialect.name, leases).values(name=name, holder=holder, expires_at=now + seconds)
            stmt = stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
                where=(leases.c.expires_at <= now) | (leases.c.holder == holder),
            )
            # RETURNING, not rowcount: drivers report -1 for an upsert that changed nothing
            return conn.execute(stmt.returning(leases.c.name)).first() is not None

    def release_lease(self, name: str, holder: str) -> None:
        """Give ``name`` up, if ``holder`` still holds it."""
        leases = t.leases
        with write_transaction(self.engine) as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))
