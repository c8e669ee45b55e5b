"""Engines for the store: SQLite tuned for several processes, or PostgreSQL by URL."""

from __future__ import annotations

import functools
import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import make_url

from monitor.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_BACKSTOP_PAGES = 4096
"""WAL pages (64 MiB of 16 KiB pages) past which a writer checkpoints itself, should the
background checkpointer fall behind; SQLite's default is 1000."""
CHECKPOINT_MIN_INTERVAL_S = 0.1
WRITE = {"mlwatch_write": True}
"""Execution option that makes a SQLite transaction take the write lock at BEGIN."""

try:
    import fcntl
except ImportError:  # Windows: writers of other processes fall back on SQLite's busy timeout
    fcntl = None  # type: ignore[assignment]


class WriteGate:
    """Queues SQLite writers, threads and processes alike, in front of the database's one write lock.

    SQLite makes a writer that finds the lock taken poll for it, sleeping 1, 2, 5, 10... ms
    between tries, so two API workers ingesting at once spent much of their time asleep
    while the lock was free. A blocking ``flock`` on a file beside the database wakes the
    next writer as soon as the previous one commits. Re-entrant within a thread.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        self._depth += 1
        if self._depth > 1 or self._path is None or fcntl is None:
            return
        try:
            if self._fd is None or self._pid != os.getpid():  # a forked child needs its own open file
                self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644), os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._depth -= 1
            self._thread_lock.release()
            raise

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None and fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()

log = logging.getLogger(__name__)


class Checkpointer:
    """Copies committed pages from the WAL into the database file on a thread of its own.

    Left to itself, SQLite makes the writer whose commit takes the WAL past 1000 pages copy
    them back, and wait there for the database file's fsync: a third of the time of a bulk
    insert (benchmarks/bench_ingest.py). Here a commit only wakes this thread, and the
    checkpoint runs while writers go on (the driver lets go of the GIL inside SQLite).
    Writers still checkpoint themselves past ``CHECKPOINT_BACKSTOP_PAGES``, should this
    thread fall behind, so the WAL stays bounded either way.

    The thread starts with the first commit of a process, so processes that only read
    never start one, and stops when the store is closed or its engine collected.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()

    def poke(self) -> None:
        """Ask for a checkpoint soon: something was committed."""
        if self._thread is None or self._pid != os.getpid():  # a forked child starts its own thread
            with self._start_lock:
                if self._thread is None or self._pid != os.getpid():
                    self._wake, self._stop = threading.Event(), threading.Event()
                    self._thread = threading.Thread(
                        target=_checkpoint_loop,
                        args=(self._path, self._wake, self._stop),
                        name=f"mlwatch-checkpoint {self._path.name}",
                        daemon=True,
                    )
                    self._pid = os.getpid()
                    self._thread.start()
        self._wake.set()

    def signal_stop(self) -> None:
        """Tell the thread to stop, without waiting for it (safe from a finalizer on any thread)."""
        self._stop.set()
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread, if it runs, and wait for it."""
        self.signal_stop()
        thread, self._thread = self._thread, None
        if thread is not None and self._pid == os.getpid():
            thread.join()


def _checkpoint_loop(path: Path, wake: threading.Event, stop: threading.Event) -> None:
    # A module-level function holding no reference to the engine or its Checkpointer, so an
    # engine nobody closed can still be collected (which stops this loop, see _sqlite_engine).
    conn: sqlite3.Connection | None = None
    try:
        while True:
            wake.wait()
            if stop.is_set():
                return
            wake.clear()
            try:
                if conn is None:
                    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                # PASSIVE never waits for readers or writers: it copies what it can now.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # writers' own backstop checkpoints keep the WAL bounded
                log.warning("background checkpoint of %s failed: %s", path, exc)
            if stop.wait(CHECKPOINT_MIN_INTERVAL_S):
                return
    finally:
        if conn is not None:
            conn.close()


_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, Checkpointer] = weakref.WeakKeyDictionary()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes; it commits on leaving the block and rolls back on an error.

    On SQLite it first queues at the engine's ``WriteGate``, then takes the write lock at
    BEGIN (IMMEDIATE), so it never fails half-way for want of the lock.
    """
    gate = _GATES.get(engine)
    with gate or nullcontext(), engine.connect().execution_options(**WRITE) as conn, conn.begin():
        yield conn
    checkpointer = _CHECKPOINTERS.get(engine)
    if checkpointer is not None:
        checkpointer.poke()


def dispose(engine: Engine) -> None:
    """Stop the engine's background work and close its pooled connections."""
    checkpointer = _CHECKPOINTERS.pop(engine, None)
    if checkpointer is not None:
        checkpointer.stop()
    engine.dispose()


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
    path = None
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
    event.listen(engine, "connect", functools.partial(_sqlite_on_connect, checkpointed=path is not None))
    event.listen(engine, "begin", _sqlite_on_begin)
    _GATES[engine] = WriteGate(path.with_name(path.name + "-writelock") if path else None)
    if path is not None:
        checkpointer = _CHECKPOINTERS[engine] = Checkpointer(path)
        weakref.finalize(engine, checkpointer.signal_stop)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any, *, checkpointed: bool) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself, so writers can ask for IMMEDIATE:
    # a deferred transaction that later writes fails with SQLITE_BUSY without waiting.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    # Only takes effect on a new, empty database; 16 KiB pages made batch ingest of 20-feature
    # rows 15% faster than the default 4 KiB (benchmarks/bench_ingest.py).
    cursor.execute("PRAGMA page_size=16384")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: index updates of large batches stay in memory
    if checkpointed:  # a Checkpointer thread copies the WAL back; writers only when it falls behind
        cursor.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_BACKSTOP_PAGES}")
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
        except Exception as exc:  # SQLAlchemy's wrapper, or the driver's own error from a raw cursor (COPY)
            sqlstate = getattr(getattr(exc, "orig", exc), "sqlstate", None)
            if sqlstate not in _TRANSIENT or attempt == attempts:
                raise
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


def upsert_insert(dialect: str, table: Table) -> Any:
    """INSERT for ``table`` in the dialect named, which has ON CONFLICT (upsert) clauses."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if dialect == "postgresql" else sqlite).insert(table)
