"""Storing a fetched batch of messages, and what to tell the broker about each one.

``Consumer.handle`` decodes every message, puts the messages of one service together into
one ``Ingestor`` call (one store transaction instead of one per message), and answers one
``Outcome`` per message:

    Ack          stored (or every record already was): acknowledge
    DeadLetter   the message can never be stored (bad JSON, a wrong type, an unknown
                 service, a record the schema refuses): publish it where people look, then drop it
    Retry        the store did not answer: redeliver later, never dead-letter

A message refused inside a combined write is retried alone, so a bad message never drags its
good neighbours to the dead letters. ``run`` is the loop around a broker ``Source``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from monitor.errors import NotFound, Unavailable, ValidationFailed
from monitor.ingest import Ingestor
from monitor.records import IngestResult, Service
from monitor.store.consumers import ConsumerStatus
from monitor.stream.heartbeat import Heartbeat, LagHistogram
from monitor.stream.messages import Decoded, Message, decode

log = logging.getLogger("mlwatch.consume")

OUTAGES = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, Unavailable, OSError)
"""What a store that is down, locked or unreachable raises: the message waits for it, redelivered."""
RETRY_DELAY_S = 5.0
"""How long a message waits before it is redelivered after a store outage: long enough for a
restarting database, short enough that a locked SQLite file costs seconds of latency."""
MAX_FAILED_DELIVERIES = 5
"""Deliveries after which a message that keeps failing in an unexpected way (a bug) is
dead-lettered with the error instead of being redelivered for ever."""


@dataclass(frozen=True, slots=True)
class Ack:
    """Stored, or already stored: acknowledge the message."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The message can never be stored; ``error`` says why (field and what was expected)."""

    error: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Not stored this time (the store is down): redeliver after ``delay`` seconds."""

    reason: str
    delay: float = RETRY_DELAY_S


Outcome = Ack | DeadLetter | Retry


@dataclass
class ConsumeStats:
    """What a consumer did since it started (``mlwatch consume --json`` prints it at exit)."""

    consumed: int = 0  # messages fetched
    stored: int = 0  # records (predictions and labels) new to the store
    duplicates: int = 0  # records the store had already: redelivered or re-sent
    dead_lettered: int = 0  # messages
    retried: int = 0  # messages handed back for redelivery (store outage)
    redelivered: int = 0  # messages delivered more than once
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return asdict(self)


class Source(Protocol):
    """A broker subscription: fetch a batch, then settle it (the JetStream source implements it)."""

    async def fetch(self, batch: int) -> list[Message]:
        """Up to ``batch`` messages, waiting a short while for the first; [] when none came."""

    async def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Apply one outcome to each message of the last fetch, in its order."""


class Consumer:
    """Stores batches of broker messages through the ``Ingestor``, one outcome per message."""

    def __init__(
        self,
        lookup: Callable[[str], Service],
        ingestor: Ingestor,
        *,
        max_records: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lookup = lookup  # a service by name; NotFound for an unknown one (Store.get_service)
        self.ingestor = ingestor
        self.max_records = max_records  # per message, and per combined write
        self.clock = clock  # epoch seconds, compared with the broker's publish times
        self.stats = ConsumeStats()
        self.lag = LagHistogram()
        self.pending: int | None = None  # the broker's backlog as the last message said it

    def handle(self, messages: Sequence[Message]) -> list[Outcome]:
        """Store what ``messages`` hold and say what to do with each of them."""
        outcomes: list[Outcome] = [Ack()] * len(messages)
        groups: dict[tuple[str, str], list[tuple[int, Decoded]]] = {}
        for i, message in enumerate(messages):
            try:
                found = decode(message, self.max_records)
            except ValidationFailed as exc:
                outcomes[i] = DeadLetter(str(exc))
                continue
            groups.setdefault((found.kind, found.service), []).append((i, found))
        for (kind, name), members in groups.items():
            for i, outcome in self._store_service(kind, name, members, messages):
                outcomes[i] = outcome
        self._count(messages, outcomes)
        self._measure(messages, outcomes)
        return outcomes

    def _store_service(
        self, kind: str, name: str, members: list[tuple[int, Decoded]], messages: Sequence[Message]
    ) -> Iterator[tuple[int, Outcome]]:
        try:
            service = self.lookup(name)
        except (NotFound, ValidationFailed) as exc:
            yield from ((i, DeadLetter(str(exc))) for i, _ in members)
            return
        except Exception as exc:
            yield from ((i, self._failed(exc, messages[i])) for i, _ in members)
            return
        for chunk in _chunks(members, self.max_records):
            yield from self._store_chunk(service, kind, chunk, messages)

    def _store_chunk(
        self, service: Service, kind: str, chunk: list[tuple[int, Decoded]], messages: Sequence[Message]
    ) -> Iterator[tuple[int, Outcome]]:
        try:
            self._write(service, kind, [d for _, d in chunk])
        except ValidationFailed as exc:
            if len(chunk) == 1:
                yield chunk[0][0], DeadLetter(str(exc))
            else:  # which message was it? each alone, so that the others are stored
                for member in chunk:
                    yield from self._store_chunk(service, kind, [member], messages)
            return
        except Exception as exc:
            yield from ((i, self._failed(exc, messages[i])) for i, _ in chunk)
            return
        yield from ((i, Ack()) for i, _ in chunk)

    def _write(self, service: Service, kind: str, parts: list[Decoded]) -> None:
        result: IngestResult
        if kind == "predictions":
            records = [r for part in parts for r in part.predictions]
            result = self.ingestor.predictions(service, records)
        else:
            result = self.ingestor.labels(service, [r for part in parts for r in part.labels])
        self.stats.stored += result.accepted
        self.stats.duplicates += result.duplicates

    def _failed(self, exc: Exception, message: Message) -> Outcome:
        if isinstance(exc, OUTAGES):
            return Retry(f"the store is unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        log.error("unexpected error storing a message of %s", message.subject, exc_info=exc)
        if message.deliveries >= MAX_FAILED_DELIVERIES:
            return DeadLetter(
                f"internal error ({type(exc).__name__}) in {message.deliveries} deliveries; "
                "this is a bug, please report it with the consumer's log"
            )
        return Retry(f"internal error ({type(exc).__name__})")

    def _count(self, messages: Sequence[Message], outcomes: Sequence[Outcome]) -> None:
        self.stats.batches += 1
        self.stats.consumed += len(messages)
        self.stats.redelivered += sum(m.deliveries > 1 for m in messages)
        self.stats.dead_lettered += sum(isinstance(o, DeadLetter) for o in outcomes)
        self.stats.retried += sum(isinstance(o, Retry) for o in outcomes)

    def _measure(self, messages: Sequence[Message], outcomes: Sequence[Outcome]) -> None:
        """Lag of the messages stored (commit time minus publish time) and the backlog left."""
        now = self.clock()
        self.lag.observe(
            [
                max(0.0, now - m.published)
                for m, o in zip(messages, outcomes, strict=True)
                if m.published and isinstance(o, Ack)
            ]
        )
        self.pending = next((m.pending for m in reversed(messages) if m.pending is not None), self.pending)

    def status(self, heartbeat: Heartbeat) -> ConsumerStatus:
        """What ``heartbeat`` writes now: the counters, the lag histogram and the backlog."""
        return heartbeat.status(self.stats.as_dict(), self.lag, self.pending)


def _chunks(members: list[tuple[int, Decoded]], max_records: int) -> Iterator[list[tuple[int, Decoded]]]:
    """Messages put together into writes of at most ``max_records`` records, none holding a
    request id twice (a message published twice would make the Ingestor refuse the batch)."""
    chunk: list[tuple[int, Decoded]] = []
    ids: set[str] = set()
    size = 0
    for member in members:
        mine = member[1].request_ids
        if chunk and (size + len(mine) > max_records or not ids.isdisjoint(mine)):
            yield chunk
            chunk, ids, size = [], set(), 0
        chunk.append(member)
        ids.update(mine)
        size += len(mine)
    if chunk:
        yield chunk


async def run(
    source: Source, consumer: Consumer, stop: asyncio.Event, *, batch: int = 100, heartbeat: Heartbeat | None = None
) -> ConsumeStats:
    """Fetch, store and settle batches until ``stop`` is set; the batch in hand is finished first.

    Acknowledgements go out only after the store committed (``settle`` after ``handle``), so a
    consumer that dies in between gets its batch redelivered, and the request ids make the
    second delivery store nothing twice. ``heartbeat`` writes the consumer's status every few
    seconds and once more when it stops.
    """
    while not stop.is_set():
        messages = await source.fetch(batch)
        if messages:
            await _one_batch(source, consumer, messages)
        else:
            consumer.pending = 0 if consumer.pending is not None else None  # nothing came: nothing waits
        if heartbeat is not None and heartbeat.due():
            await asyncio.to_thread(heartbeat.beat, consumer.status(heartbeat))
    if heartbeat is not None:
        await asyncio.to_thread(heartbeat.beat, consumer.status(heartbeat))
    return consumer.stats


async def _one_batch(source: Source, consumer: Consumer, messages: list[Message]) -> None:
    started = time.perf_counter()
    before = ConsumeStats(**consumer.stats.as_dict())
    outcomes = await asyncio.to_thread(consumer.handle, messages)  # the event loop keeps the connection alive
    await source.settle(outcomes)
    _log_batch(before, consumer.stats, time.perf_counter() - started)


def _log_batch(before: ConsumeStats, after: ConsumeStats, seconds: float) -> None:
    change = {name: value - getattr(before, name) for name, value in after.as_dict().items()}
    log.info(
        "%d messages: %d records stored, %d duplicates, %d dead-lettered, %d retried, %d redelivered (%.3f s)",
        change["consumed"],
        change["stored"],
        change["duplicates"],
        change["dead_lettered"],
        change["retried"],
        change["redelivered"],
        seconds,
    )
