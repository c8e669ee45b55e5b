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
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from monitor.errors import ConfigError, Unavailable
from monitor.stream.consumer import Ack, DeadLetter, Outcome, Retry
from monitor.stream.messages import Message

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

log = logging.getLogger("mlwatch.consume")

INSTALL = "pip install 'mlwatch[stream]'"
"""What installs the NATS client (nats-py)."""
DEAD_PREFIX = "mlwatch.dead."
"""Dead letters go to this prefix followed by the subject the message came on."""
ERROR_HEADER = "Mlwatch-Error"
"""The header of a dead letter that says why it was refused."""
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

    async def open(self) -> None:
        """Connect, create the streams that are missing, and bind to the durable consumer."""
        nats = _client()
        url = self.options.url
        try:
            self._nc = await nats.connect(
                url, connect_timeout=5, max_reconnect_attempts=_START_ATTEMPTS, error_cb=_log_error
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
        return [Message(m.subject, m.data, m.metadata.num_delivered) for m in self._pending]

    async def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Acknowledge, dead-letter or hand back each message of the last fetch."""
        assert self._nc is not None and len(outcomes) == len(self._pending)
        for msg, outcome in zip(self._pending, outcomes, strict=True):
            if isinstance(outcome, Ack):
                await msg.ack()
            elif isinstance(outcome, DeadLetter):
                await self._dead_letter(msg, outcome.error)
            else:
                await self._retry(msg, outcome)
        self._pending = []
        await self._nc.flush()  # the acks are on the wire before the next fetch (or the exit)

    async def close(self) -> None:
        """Send what is buffered and disconnect; unsettled messages come back after ``ack_wait``."""
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


async def _log_error(exc: Exception) -> None:
    """One line per connection error, instead of the client's traceback each time."""
    log.warning("NATS: %s", exc or type(exc).__name__)


def _client() -> ModuleType:
    try:
        import nats
        import nats.errors
    except ImportError as exc:
        raise ConfigError(f"mlwatch consume needs the NATS client: {INSTALL}") from exc
    return nats
