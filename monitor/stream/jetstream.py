"""NATS JetStream as a ``Source``: a durable pull consumer shared by every ``mlwatch consume``.

Every consumer started with the same durable name pulls from the same server-side consumer,
so running several spreads the messages among them (each message goes to one). A message is
acknowledged only after its records are committed; one that is fetched and never settled
(the process was killed) comes back after ``ack_wait``. Dead letters are published on
``mlwatch.dead.<original subject>`` with the error in the ``Mlwatch-Error`` header and the
original body, into a stream of their own (``<stream>_DEAD``, created beside the stream
unless another stream already holds those subjects) so that they are kept and never read
back by the consumer; the original is then terminated.

    >>> source = JetStreamSource(JetStreamOptions("nats://127.0.0.1:4222"))
    >>> await source.open()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from monitor.errors import ConfigError, Unavailable
from monitor.stream.consumer import Ack, DeadLetter, Outcome, Retry
from monitor.stream.messages import Message

if TYPE_CHECKING:
    from nats.aio.client import Client, Server
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

log = logging.getLogger("mlwatch.consume")

INSTALL = "pip install 'mlwatch[stream]'"
"""What installs the NATS client (nats-py)."""
DEAD_PREFIX = "mlwatch.dead."
"""Dead letters go to this prefix followed by the subject the message came on."""
ERROR_HEADER = "Mlwatch-Error"
"""The header of a dead letter that says why it was refused."""
_LOSSES = (OSError, TimeoutError)  # with nats' StaleConnectionError (EOF): errors of a connection that broke
BACKOFF_MAX_S = 4.0
"""The longest wait between two reconnection attempts after the connection was lost."""
_START_ATTEMPTS = 2  # a server that does not answer at the start is reported in seconds, not minutes
_HEADER_CHARS = 2000  # NATS headers travel in one line; the error's first part is what matters


@dataclass(frozen=True)
class JetStreamOptions:
    """Where to read: the server, the stream (created if missing), the durable consumer, its subjects."""

    url: str
    stream: str = "MLWATCH"
    stream_subjects: tuple[str, ...] = ("predictions.>", "labels.>")  # used only to create the stream
    durable: str = "mlwatch"
    subjects: tuple[str, ...] = ()  # what the consumer reads; () = every subject of the stream
    ack_wait: float = 30.0  # seconds before an unsettled message is delivered again
    fetch_wait: float = 1.0  # seconds a fetch waits for a first message; also how soon a stop is noticed
    settle_wait: int = 10  # seconds a settle waits for the server to confirm it got the acks (whole: nats-py)

    @property
    def dead_stream(self) -> str:
        """The stream created to keep dead letters."""
        return f"{self.stream}_DEAD"


class JetStreamSource:
    """Pulls batches from a durable JetStream consumer and settles them (ack, nak, dead letter)."""

    def __init__(self, options: JetStreamOptions) -> None:
        self.options = options
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._pending: list[Msg] = []
        self._link = Link(options.url)

    async def open(self) -> None:
        """Connect, create the streams that are missing, and bind to the durable consumer."""
        nats = _client()
        url = self.options.url
        link = self._link
        try:
            self._nc = await nats.connect(
                url,
                connect_timeout=5,
                max_reconnect_attempts=_START_ATTEMPTS,
                error_cb=link.error,
                disconnected_cb=link.disconnected,
                reconnected_cb=link.reconnected,
                reconnect_to_server_handler=link.next_attempt,
            )
        except (OSError, nats.errors.Error) as exc:
            raise Unavailable(
                f"cannot reach NATS at {url}: {exc or type(exc).__name__}; start a server with JetStream "
                "(nats-server -js) or point --stream at one"
            ) from exc
        # Once connected, reconnect for as long as it takes: a NATS restart must not stop the
        # consumer. The client reads this option at each reconnect (nats-py 2.16), while at the
        # start -1 would retry an unreachable server for ever without saying anything.
        self._nc.options["max_reconnect_attempts"] = -1
        link.connected = True
        self._js = self._nc.jetstream()
        subjects = await self._ensure_stream()
        await self._ensure_dead_stream(subjects)
        self._sub = await self._bind()

    async def fetch(self, batch: int) -> list[Message]:
        """Up to ``batch`` messages; [] when none came within ``fetch_wait`` seconds."""
        import nats.errors

        assert self._sub is not None, "open() first"
        try:
            self._pending = await self._sub.fetch(batch, timeout=self.options.fetch_wait)
        except TimeoutError:  # nats' own, and the asyncio one its partial fetches raise
            self._pending = []
        except nats.errors.ConnectionClosedError as exc:
            raise Unavailable(f"the connection to NATS at {self.options.url} is closed: {exc}") from exc
        return [_message(m) for m in self._pending]

    async def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Acknowledge, dead-letter or hand back each message of the last fetch.

        A connection lost on the way (the acks buffered while the client reconnects, a flush
        that times out) is no error: the records are committed already, and every message
        whose ack the server did not get comes back after ``ack_wait``, to be counted as a
        duplicate. The consumer carries on with the next fetch.
        """
        import nats.errors

        assert self._nc is not None and len(outcomes) == len(self._pending)
        pending, self._pending = self._pending, []
        try:
            for msg, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, Ack):
                    await msg.ack()
                elif isinstance(outcome, DeadLetter):
                    await self._dead_letter(msg, outcome.error)
                else:
                    await self._retry(msg, outcome)
            # the acks are on the wire before the next fetch (or the exit)
            await self._nc.flush(timeout=self.options.settle_wait)
        except (nats.errors.Error, *_LOSSES) as exc:
            log.warning(
                "could not confirm the settlement of %d messages with NATS (%s); those it did not get "
                "come back after %.0f s and are stored once",
                len(pending),
                str(exc) or type(exc).__name__,
                self.options.ack_wait,
            )

    async def close(self) -> None:
        """Send what is buffered and disconnect; unsettled messages come back after ``ack_wait``."""
        self._link.connected = False  # the client calls disconnected_cb on close too
        if self._nc is not None and not self._nc.is_closed:
            # close, not drain: draining waits for the pull request left open on the server
            # (up to its 30 s timeout), and the acks went out with the last settle already.
            await self._nc.close()

    async def _dead_letter(self, msg: Msg, error: str) -> None:
        assert self._js is not None
        header = error.replace("\r", " ").replace("\n", " ").encode("ascii", "backslashreplace").decode()
        try:
            await self._js.publish(DEAD_PREFIX + msg.subject, msg.data, headers={ERROR_HEADER: header[:_HEADER_CHARS]})
        except Exception as exc:  # the dead letter is not kept: keep the message instead
            log.warning("could not publish a dead letter for %s (%s); it will be redelivered", msg.subject, exc)
            await msg.nak(delay=self.options.ack_wait)
            return
        log.warning("dead-lettered a message of %s: %s", msg.subject, error[:500])
        await msg.term()

    async def _retry(self, msg: Msg, outcome: Retry) -> None:
        log.warning("%s: redelivering a message of %s in %.0f s", outcome.reason, msg.subject, outcome.delay)
        await msg.nak(delay=outcome.delay)

    async def _ensure_stream(self) -> list[str]:
        """The subjects of the stream, created with ``stream_subjects`` if it is missing."""
        from nats.js.errors import NotFoundError

        assert self._js is not None
        name = self.options.stream
        try:
            info = await self._js.stream_info(name)
        except NotFoundError:
            subjects = list(self.options.stream_subjects)
            info = await self._js.add_stream(name=name, subjects=subjects)
            log.info("created stream %s on %s", name, ", ".join(subjects))
        return list(info.config.subjects or [])

    async def _ensure_dead_stream(self, subjects: list[str]) -> None:
        from nats.js.errors import BadRequestError, NotFoundError

        assert self._js is not None
        name, dead = self.options.dead_stream, [DEAD_PREFIX + s for s in subjects]
        try:
            await self._js.stream_info(name)
            return
        except NotFoundError:
            pass
        try:
            await self._js.add_stream(name=name, subjects=dead)
            log.info("created stream %s for dead letters on %s", name, ", ".join(dead))
        except BadRequestError as exc:  # another stream holds them already (subjects overlap)
            log.info("dead letters go to the stream that holds %s (%s)", ", ".join(dead), exc.description)

    async def _bind(self) -> JetStreamContext.PullSubscription:
        from nats.js.api import AckPolicy, ConsumerConfig
        from nats.js.errors import NotFoundError

        assert self._js is not None
        options = self.options
        subjects = list(options.subjects)
        try:
            info = await self._js.consumer_info(options.stream, options.durable)
            _check_same_subjects(options, info.config.filter_subject, info.config.filter_subjects)
        except NotFoundError:
            config = ConsumerConfig(
                durable_name=options.durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=options.ack_wait,
                filter_subject=subjects[0] if len(subjects) == 1 else None,
                filter_subjects=subjects if len(subjects) > 1 else None,
            )
            await self._js.add_consumer(options.stream, config)  # the same config twice is no error
        return await self._js.pull_subscribe_bind(durable=options.durable, stream=options.stream)


def _check_same_subjects(options: JetStreamOptions, one: str | None, several: list[str] | None) -> None:
    """A durable consumer reads the subjects it was created with: refuse to read others under its name."""
    existing = sorted(several or ([one] if one else []))
    if existing != sorted(options.subjects):
        shown = ", ".join(existing) or "every subject of the stream"
        raise ConfigError(
            f"the durable consumer {options.durable!r} of stream {options.stream} reads {shown}, not "
            f"{', '.join(options.subjects) or 'every subject of the stream'}; give the same --subject, "
            "another --durable, or delete it (nats consumer rm)"
        )


def _message(msg: Msg) -> Message:
    meta = msg.metadata  # parsed from the reply subject: the stream's time of receipt, the backlog
    return Message(msg.subject, msg.data, meta.num_delivered, meta.timestamp.timestamp(), meta.num_pending)


class Link:
    """The connection's story told once: one line when it is lost, one when it is back.

    The client retries for ever after a loss (see ``open``), waiting ``backoff(n)`` seconds
    before its n-th attempt; every failed attempt calls ``error``, which stays quiet while the
    loss is already said, so a NATS that is down for an hour writes two lines, not thousands.
    """

    def __init__(self, url: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.clock = clock
        self.connected = False  # set once open() is through; cleared by close()
        self.lost_at: float | None = None
        self.cause: str | None = None  # the error that ended the connection, for the loss line

    async def disconnected(self) -> None:
        """The client lost the server: say so, once, with the error that ended the connection."""
        if self.connected and self.lost_at is None:
            self.lost_at = self.clock()
            log.warning(
                "lost the connection to NATS at %s (%s); reconnecting with backoff (up to %.0f s between attempts)",
                self.url,
                self.cause or "closed",
                BACKOFF_MAX_S,
            )
        self.cause = None

    async def reconnected(self) -> None:
        """The client is back: say after how long."""
        if self.lost_at is not None:
            log.info("reconnected to NATS at %s after %.1f s", self.url, self.clock() - self.lost_at)
        self.lost_at = None

    async def error(self, exc: Exception) -> None:
        """A connection error. One that ends the connection is said by the loss line that follows
        it, the failed attempts of a reconnection or of the start by the loss line or the start's
        error: those only at debug level. Any other (a refused permission) is one warning line."""
        import nats.errors

        text = str(exc) or type(exc).__name__
        if (
            self.connected
            and self.lost_at is None
            and not isinstance(exc, (*_LOSSES, nats.errors.StaleConnectionError))
        ):
            log.warning("NATS: %s", text)
            return
        if self.connected and self.lost_at is None:
            self.cause = text
        log.debug("NATS: %s", text)

    def next_attempt(self, servers: list[Server], info: dict[str, object]) -> tuple[Server | None, float]:
        """The client's hook before each reconnection attempt: the server (its own choice) and the wait."""
        return None, backoff(min((s.reconnects for s in servers), default=0))


def backoff(attempt: int) -> float:
    """Seconds before reconnection attempt ``attempt`` (0 first): at once, then doubling from a
    quarter of a second up to ``BACKOFF_MAX_S``, so a NATS restart costs about a second and a
    long outage one attempt every few seconds."""
    return 0.0 if attempt == 0 else min(BACKOFF_MAX_S, 0.25 * 2 ** (attempt - 1))


def _client() -> ModuleType:
    try:
        import nats
        import nats.errors
    except ImportError as exc:
        raise ConfigError(f"mlwatch consume needs the NATS client: {INSTALL}") from exc
    return nats
