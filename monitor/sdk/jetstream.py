"""Batches published to NATS JetStream, where ``mlwatch consume`` reads them (``MLWATCH_SINK=nats://...``).

Each batch becomes one message on ``predictions.<service>``, whose body is what the ingest
API takes (``{"records": [...]}``); the send returns once the stream acknowledged it (a
JetStream ``PubAck``), so a batch counts as sent only when the broker keeps it. The answers
map onto the transport errors (``monitor.sdk.transport``), and so onto the tracker's
spool and quarantine:

    no server, a timeout, no stream on the subject yet, JetStream 503   Retryable: spooled
    a batch over the server's max payload or the stream's max_msg_size Rejected(413): split
    another JetStream API error (the stream refuses the message)       Rejected: quarantined

Every message carries ``Nats-Msg-Id`` (a digest of its request ids), so a batch published
again from the spool within the stream's duplicate window (2 min by default) is dropped by
the server; past it, the consumer's request ids make it store nothing twice.

nats-py is asyncio only. Its event loop runs in a thread of its own (``mlwatch-nats``),
started on the first send, so that the connection answers the server's pings and reconnects
while the sender waits; the sender thread hands each publish to it and waits for the ack.
``nats`` is imported there, on first use: the SDK itself loads only the standard library.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import threading
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.sdk.sink import PREDICTIONS, require
from monitor.sdk.transport import Json, Rejected, Retryable

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

log = logging.getLogger("monitor.sdk")
T = TypeVar("T")
_MESSAGE_TOO_LARGE = 10054  # JetStream's error code for a message over the stream's max_msg_size: split it


class JetStreamTransport:
    """Publishes batches to ``predictions.<service>`` on the NATS server at ``url``, waiting for each ack.

    ``timeout``: seconds to connect, and to wait for the stream's acknowledgement of a batch.
    """

    def __init__(self, url: str, service: str, *, subject: str | None = None, timeout: float = 5.0) -> None:
        if not url.startswith(("nats://", "tls://")):
            raise ValueError(f"expected a nats://HOST:PORT URL, got {url!r}")
        require("nats", "nats:")
        self.url = url
        self.subject = subject or f"{PREDICTIONS}.{service}"
        self.target = f"{url.rstrip('/')}/{self.subject}"
        self.timeout = timeout
        self._loop = LoopThread()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    def send(self, records: Sequence[Json]) -> None:
        """Publish one batch and wait for the stream to keep it."""
        body = json.dumps({"records": list(records)}, allow_nan=False, default=str).encode()
        self._loop.run(self._publish(body, batch_id(records)), self.timeout * 2 + 1)

    async def _publish(self, body: bytes, msg_id: str) -> None:
        nats = _nats()
        from nats.js.errors import APIError, NoStreamResponseError

        try:
            js = await self._context()
            await js.publish(self.subject, body, timeout=self.timeout, headers={"Nats-Msg-Id": msg_id})
        except nats.errors.MaxPayloadError as exc:
            raise Rejected(413, f"a batch of {len(body)} bytes is over the NATS server's max payload") from exc
        except NoStreamResponseError as exc:
            raise Retryable(
                f"no JetStream stream holds {self.subject} on {self.url} yet; `mlwatch consume` creates one"
            ) from exc
        except APIError as exc:
            if exc.code in (None, 503):
                raise Retryable(f"JetStream: {exc.description or exc}") from exc
            status = 413 if exc.err_code == _MESSAGE_TOO_LARGE else int(exc.code)
            raise Rejected(status, f"JetStream refused a batch of {len(body)} bytes: {exc.description}") from exc
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise Retryable(f"NATS at {self.url}: {type(exc).__name__}: {exc}") from exc

    async def _context(self) -> JetStreamContext:
        """The JetStream context, connecting first; a server that does not answer raises at once."""
        if self._js is not None:
            return self._js
        nats = _nats()
        self._nc = await nats.connect(
            self.url, connect_timeout=self.timeout, max_reconnect_attempts=1, error_cb=_log_error
        )
        # Connected once: reconnect for as long as it takes (read at each reconnect); at the
        # start a bounded attempt lets the batch be spooled instead of waiting for a server.
        self._nc.options["max_reconnect_attempts"] = -1
        self._js = self._nc.jetstream()
        return self._js

    def close(self) -> None:
        """Disconnect and stop the event loop's thread."""
        if self._nc is not None and self._loop.running:
            try:
                self._loop.run(self._nc.close(), self.timeout)
            except Retryable:
                log.debug("mlwatch: the NATS connection did not close cleanly", exc_info=True)
        self._nc = self._js = None
        self._loop.stop()

    def after_fork(self) -> None:
        """In a forked child: a connection and an event loop of its own (the parent's thread is not here)."""
        self._nc = self._js = None
        self._loop = LoopThread()


class LoopThread:
    """An asyncio event loop running in a daemon thread of its own, started on first use."""

    def __init__(self, name: str = "mlwatch-nats") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the loop's thread has been started (and not stopped)."""
        return self._loop is not None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait for it; Retryable when it takes over ``timeout`` seconds."""
        future = asyncio.run_coroutine_threadsafe(coro, self._started())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise Retryable(f"no answer within {timeout:g} s") from exc

    def stop(self) -> None:
        """Stop the loop; a later ``run`` starts another."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=_serve, args=(loop,), name=self._name, daemon=True).start()
                self._loop = loop
            return self._loop


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def batch_id(records: Sequence[Json]) -> str:
    """A digest of the batch's request ids: the same batch published twice has the same id."""
    digest = hashlib.blake2b(digest_size=16)
    for record in records:
        digest.update(str(record.get("request_id")).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _nats() -> Any:
    import nats
    import nats.errors

    return nats


async def _log_error(exc: Exception) -> None:
    """One line per connection error, instead of the client's traceback each time."""
    log.warning("mlwatch: NATS: %s", exc or type(exc).__name__)
