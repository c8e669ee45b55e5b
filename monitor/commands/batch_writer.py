"""The child process that writes ``mlwatch ingest --direct``'s batches into the store.

Encoding a batch (a features dict and its JSON text per row) and the store's inserts each
cost about 10 µs a row, and in one process they take turns on one GIL: a 1M-row file of 20
features loaded at about 50k rows/s using little more than one core. With the writes in a
child process, the command reads, checks and encodes the next batch while the child stores
the previous one. A batch crosses the pipe pickled (about 1 µs a row each way).

    >>> writer = StoreWriter("sqlite:///mlwatch.db")
    >>> writer.write(service, encode_columns(service, columns), labels=[])
    5000
    >>> writer.close()
"""

from __future__ import annotations

import contextlib
import multiprocessing
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from monitor.errors import StoreError

if TYPE_CHECKING:
    from monitor.records import LabelRecord, Service
    from monitor.store.ingest import EncodedBatch

_STOP = None


class StoreWriter:
    """A child process holding its own connection to the store at ``url``; one write at a time.

    Started at once, so that its imports overlap the check phase. An error in the child comes
    back as a ``StoreError`` with the child's message; the child ending unexpectedly too.
    """

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process running pyarrow's threads
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(url, child), name="mlwatch-ingest-writer", daemon=True)
        self._process.start()
        child.close()

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self._process.pid

    def write(self, service: Service, batch: EncodedBatch, labels: list[LabelRecord]) -> int:
        """Store ``labels``, then ``batch``, in the child; how many predictions were new."""
        try:
            self._conn.send((service, batch, labels))
            outcome, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
            self._process.join(timeout=5)
            raise StoreError(f"the ingest writer process ended (exit code {self._process.exitcode})") from exc
        if outcome == "error":
            raise StoreError(value)
        return int(value)

    def close(self) -> None:
        """Ask the child to close its store and end; wait for it a little, then stop it."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):  # it has ended already
            self._conn.send(_STOP)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        self._conn.close()


def _serve(url: str, conn: Connection) -> None:
    from monitor.errors import MlwatchError
    from monitor.ingest import Ingestor
    from monitor.store import Store

    store = Store.open(url, migrate=False)  # the command opened (and for SQLite migrated) it already
    try:
        while (message := conn.recv()) is not _STOP:
            service, batch, labels = message
            try:
                if labels:
                    Ingestor(store).labels(service, labels)
                conn.send(("ok", store.add_encoded(batch).accepted))
            except MlwatchError as exc:
                conn.send(("error", str(exc)))
            except Exception as exc:  # a database error: the message, not the object (it may not pickle)
                conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
    except EOFError:
        pass  # the command ended without saying so (killed): nothing is half-written, each batch commits whole
    finally:
        store.close()
