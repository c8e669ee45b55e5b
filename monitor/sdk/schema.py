"""The features a service registered, to name the values a payload gives by position.

    >>> Schema((("age", "numerical"), ("city", "categorical"))).names_for(named={"city"}, count=1)
    ['age']

A row's positional values (``monitor.sdk.payloads``: a V1 row list, a V2 tensor of several
columns; a sequence passed to ``Tracker.log``; an ONNX input matrix) are named, in order,
after the registered features that the row does not name already, when they are exactly as
many. Otherwise (no features registered, or another count: a *miss*) they are named ``f0``,
``f1``, ... (``positional_name``), whatever the protocol, so one model has one schema.

``Names`` keeps the schema of one service, read from its source (``GET
/v1/services/{service}/schema``, or the store in store mode) when the first positional row
is sent, when told to (the proxy does at start), and on a miss at most once per
``refresh_interval``: a service registered or changed later is learned without a restart,
and one that registers no features costs one request per interval. Names are given when a
batch is sent, not when it is queued, so that a batch spooled while the server was away
is named by the schema the server has when it comes back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger("monitor.sdk")
REFRESH_INTERVAL = 30.0  # seconds between two reads on a miss: a new schema is seen within it


def positional_name(index: int) -> str:
    """The name of the ``index``-th positional value when the service registered no match: ``f<index>``."""
    return f"f{index}"


@dataclass(frozen=True, slots=True)
class Schema:
    """A service's registered features, ``(name, type)`` in their registered order, and its target."""

    features: tuple[tuple[str, str], ...] = ()
    target: str | None = None

    @classmethod
    def of(cls, data: Any) -> Schema:
        """From the body of ``GET /v1/services/{service}/schema``; ValueError when it has another shape."""
        try:
            features = tuple((str(f["name"]), str(f.get("type", "numerical"))) for f in data["features"])
            target = data.get("target")
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"expected {{'features': [{{'name', 'type'}}], 'target'}}, got {data!r:.200}") from exc
        return cls(features, str(target) if target is not None else None)

    @property
    def names(self) -> tuple[str, ...]:
        """The feature names, in order."""
        return tuple(name for name, _ in self.features)

    def names_for(self, named: Collection[str], count: int) -> list[str] | None:
        """Names of ``count`` positional values in a row that names ``named``; None when they do not match."""
        free = [name for name in self.names if name not in named]
        return free if free and len(free) == count else None


@runtime_checkable
class SchemaSource(Protocol):
    """Where a service's schema is read (a transport): None when it cannot be read now."""

    def schema(self) -> Schema | None: ...


class Names:
    """Names positional values after one service's schema, read from ``source`` (None: never; all ``f<i>``)."""

    def __init__(
        self,
        source: SchemaSource | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self._source = source
        self._clock = clock
        self._interval = refresh_interval
        self._read_at = -math.inf
        self._warned: set[int] = set()
        self.schema: Schema | None = None

    def names(self, named: Collection[str], count: int) -> list[str]:
        """The names of ``count`` positional values in a row that names ``named`` (read again on a miss, when due)."""
        found = self.schema.names_for(named, count) if self.schema is not None else None
        if found is None and self._source is not None and self._clock() - self._read_at >= self._interval:
            self.refresh()
            found = self.schema.names_for(named, count) if self.schema is not None else None
        if found is None:
            self._warn(count)
            return [positional_name(i) for i in range(count)]
        return found

    def refresh(self) -> None:
        """Read the schema from the source now (kept as it was when it cannot be read).

        Only a read that succeeds starts the interval: a server that was away is asked again
        at the next miss, before the batches that waited for it are named.
        """
        if self._source is None:
            return
        schema = self._source.schema()
        if schema is not None:
            self.schema = schema
            self._read_at = self._clock()

    def _warn(self, count: int) -> None:
        if self.schema is None or not self.schema.features or count in self._warned:
            return
        self._warned.add(count)
        log.warning(
            "mlwatch: a row gives %d value(s) by position, which match none of the %d registered feature(s) "
            "it leaves unnamed; they are logged as f0, f1, ... (register the features in the model's order)",
            count,
            len(self.schema.features),
        )
