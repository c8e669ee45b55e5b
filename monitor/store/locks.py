"""Named exclusive locks held in the store, so they serialize across processes and hosts.

PostgreSQL takes a transaction-scoped advisory lock on a hash of the name; SQLite takes the
database's write lock (``BEGIN IMMEDIATE``). Either way the lock is released when the
transaction ends, and work done on the yielded connection commits atomically with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from monitor.store.engine import write_transaction


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
