"""Splitting a batch in halves to find the records a server refuses or fails on.

The ingest API stores a batch whole or not at all, so one record it refuses (422) or fails
on (a 5xx) stops the whole batch. Sending the halves, and the failing halves again, finds
that record in about 2·log2(n) requests (18 for a batch of 500), and every other record
is delivered on the way. A 4xx other than 413 and 422 refuses a piece whole (an unknown
service refuses every record alike), so it is not split further.

Until the server has taken or refused some part of the batch, nothing shows that it works
at all: then only the first failing half is split further and the other is held. A server
that fails everything (an outage that answers 500) so costs about log2(n) pairs of
requests, not 2n, and gives back the whole batch as held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.sdk.calls import Json
from monitor.sdk.transport import Rejected, Retryable, ServerError, Unauthorized

SPLITTABLE = frozenset({413, 422})  # refusals of part of a batch: too large, a record invalid


@dataclass
class Outcome:
    """Where a split put each record of the batch: taken, refused, failing on its own, or held."""

    taken: int = 0
    refused: list[tuple[list[Json], Rejected]] = field(default_factory=list)
    failing: list[tuple[Json, ServerError]] = field(default_factory=list)
    held: list[Json] = field(default_factory=list)
    stopped: Retryable | Unauthorized | None = None  # what ended the split early (the rest is held)


class Split:
    """One split of ``records``, whose whole batch failed with ``first``; ``send`` raises as a Transport does."""

    def __init__(self, send: Callable[[list[Json]], None], records: list[Json], *, alive: bool) -> None:
        self._send = send
        self._records = records
        self._settled = bytearray(len(records))
        self.alive = alive  # the server has shown that it works: every failing half is split
        self.outcome = Outcome()

    def run(self, first: ServerError | Rejected) -> Outcome:
        """Split until every record is taken, refused, failing alone, or held; returns where each went."""
        try:
            self._dig(0, len(self._records), first)
        except (Retryable, Unauthorized) as exc:  # the server went away or refused the token: stop
            self.outcome.stopped = exc
        self.outcome.held = [r for r, done in zip(self._records, self._settled, strict=True) if not done]
        return self.outcome

    def _dig(self, lo: int, hi: int, failure: ServerError | Rejected) -> None:
        if hi - lo == 1 or (isinstance(failure, Rejected) and failure.status not in SPLITTABLE):
            self._settle(lo, hi, failure)
            return
        mid = (lo + hi) // 2
        failed = [(a, b, exc) for a, b in ((lo, mid), (mid, hi)) if (exc := self._try(a, b)) is not None]
        for i, (a, b, exc) in enumerate(failed):
            if i == 0 or self.alive:
                self._dig(a, b, exc)

    def _try(self, lo: int, hi: int) -> ServerError | Rejected | None:
        """Send one piece; None when taken, else how it failed. Raises Retryable / Unauthorized."""
        try:
            self._send(self._records[lo:hi])
        except ServerError as exc:
            return exc
        except Unauthorized:
            raise
        except Rejected as exc:
            self.alive = True
            return exc
        self.alive = True
        self.outcome.taken += hi - lo
        self._settled[lo:hi] = b"\x01" * (hi - lo)
        return None

    def _settle(self, lo: int, hi: int, failure: ServerError | Rejected) -> None:
        if isinstance(failure, ServerError):
            self.outcome.failing.append((self._records[lo], failure))
        else:
            self.outcome.refused.append((self._records[lo:hi], failure))
        self._settled[lo:hi] = b"\x01" * (hi - lo)
