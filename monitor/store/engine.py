"""Engines for the store: SQLite tuned for several processes, or PostgreSQL by URL."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from monitor.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE = {"mlwatch_write": True}
"""Execution option that makes a SQLite transaction take the write lock at BEGIN."""


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``: ``sqlite:///path`` or ``postgresql://...``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise ConfigError(
        f"store_url: unsupported database {parsed.get_backend_name()!r}; "
        "expected sqlite:///path/to/file.db or postgresql://user@host:port/db"
    )


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself, so writers can ask for IMMEDIATE:
    # a deferred transaction that later writes fails with SQLITE_BUSY without waiting.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: index updates of large batches stay in memory
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get("mlwatch_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    """True when ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


_TRANSIENT = {"40P01", "40001"}  # PostgreSQL: deadlock detected, serialization failure
T = TypeVar("T")


def retry_transient(transaction: Callable[[], T], attempts: int = 4) -> T:
    """Run ``transaction`` again when the database aborted it as a deadlock or serialization
    victim: the whole transaction was rolled back, so running it again is safe."""
    for attempt in range(1, attempts + 1):
        try:
            return transaction()
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _TRANSIENT or attempt == attempts:
                raise
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")
