"""What the serving thread hands over, and how the sender turns it into API records.

The serving thread only builds a tuple (an explicit or decorated call) or a ``RawCall``
(middleware, proxy); filtering features, decoding bodies and cleaning values happen in the
sender thread.

Values given by position (a sequence of features, a payload's row list or tensor) wait in
a record under ``POSITIONAL`` until the batch is sent; ``Encoder.resolve`` then names them
after the service's schema (``monitor.sdk.schema``), so a batch spooled while the server
was away is named by the schema the server has when it is sent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from monitor.sdk import payloads
from monitor.sdk.schema import Names

log = logging.getLogger("monitor.sdk")
Json = dict[str, Any]
POSITIONAL = "_positional"  # a record's values given by position, named when it is sent
# (request_id, timestamp, features, prediction, probabilities, latency_ms, model_version, status)
CallTuple = tuple[str, float, Any, Any, Any, "float | None", "str | None", str]
_SKIP = object()


@dataclass(frozen=True, slots=True)
class RawCall:
    """An HTTP exchange seen by a middleware or the proxy, parsed later by the sender.

    ``id_given``: ``request_id`` came with the request (``X-Request-ID``) rather than being
    made up; a V2 request's own ``id`` still wins over it, and it wins over the reply's.
    """

    request_id: str
    timestamp: float
    latency_ms: float
    status_code: int
    request_body: bytes
    response_body: bytes
    response_encoding: str = ""
    model_version: str | None = None
    id_given: bool = False


@dataclass(frozen=True)
class FeatureFilter:
    """Which features are kept: all, those in ``allow`` (when given), minus those in ``deny``."""

    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()

    @classmethod
    def of(cls, allow: Collection[str] | None, deny: Collection[str] | None) -> FeatureFilter:
        """Build from any collections of names."""
        return cls(frozenset(allow) if allow is not None else None, frozenset(deny or ()))

    def apply(self, features: Any) -> Json:
        """Kept features with values cleaned to what the API takes (others left out)."""
        out: Json = {}
        items = features.items() if hasattr(features, "items") else enumerate(features if features is not None else ())
        for key, value in items:
            name = str(key) if not isinstance(key, int) else f"f{key}"
            if (self.allow is not None and name not in self.allow) or name in self.deny:
                continue
            clean = scalar(value)
            if clean is not _SKIP:
                out[name] = clean
        return out


class Encoder:
    """Turns queued calls into API record dicts; ``names`` names positional values when they are sent."""

    def __init__(
        self, features: FeatureFilter, default_version: str | None, max_body_bytes: int, names: Names | None = None
    ) -> None:
        self.features = features
        self.default_version = default_version
        self.max_body_bytes = max_body_bytes
        self.names = names or Names(None)
        self.unparsed = 0

    def resolve(self, records: list[Json]) -> list[Json]:
        """``records`` as the API takes them: positional values named after the schema (others unchanged)."""
        if not any(POSITIONAL in r for r in records):
            return records
        return [self._named(r) if POSITIONAL in r else r for r in records]

    def _named(self, record: Json) -> Json:
        values = record[POSITIONAL]
        named = record["features"]
        out = {k: v for k, v in record.items() if k != POSITIONAL}
        names = self.names.names(named, len(values))
        out["features"] = {**named, **self.features.apply(dict(zip(names, values, strict=True)))}
        return out

    def records(self, items: Iterable[CallTuple | RawCall]) -> list[Json]:
        """API records of a batch of queued items."""
        out: list[Json] = []
        for item in items:
            try:
                if isinstance(item, RawCall):
                    out.extend(self._raw(item))
                else:
                    out.append(self._call(item))
            except Exception:  # one odd value must not lose the batch
                log.exception("mlwatch: could not encode a tracked call; skipped")
        return out

    def _call(self, item: CallTuple) -> Json:
        request_id, ts, features, prediction, probabilities, latency, version, status = item
        named, positional = _split_features(features)
        record = _record(
            request_id,
            ts,
            self.features.apply(named),
            prediction,
            probabilities,
            latency,
            version or self.default_version,
            status,
        )
        return _with_positional(record, positional)

    def _raw(self, call: RawCall) -> list[Json]:
        status = "ok" if call.status_code < 400 else "error"
        version = call.model_version or self.default_version
        exchange = self._exchange(call)
        base = _request_id(call, exchange)
        if exchange is None or not exchange.rows:
            return [_record(base, call.timestamp, {}, None, None, call.latency_ms, version, status)]
        rows = exchange.rows
        ids = [base] if len(rows) == 1 else [f"{base}-{i}" for i in range(len(rows))]
        return [
            _with_positional(
                _record(
                    rid,
                    call.timestamp,
                    self.features.apply(r.features),
                    r.prediction,
                    r.probabilities,
                    call.latency_ms,
                    version,
                    status,
                ),
                r.positional,
            )
            for rid, r in zip(ids, rows, strict=True)
        ]

    def _exchange(self, call: RawCall) -> payloads.Exchange | None:
        if len(call.request_body) > self.max_body_bytes:
            return None
        response = call.response_body if call.status_code < 400 else b""
        if call.response_encoding == "gzip" and response:
            import gzip

            response = gzip.decompress(response)
        exchange = payloads.parse_exchange(call.request_body, response)
        if exchange is None:
            self.unparsed += 1
            log.debug("mlwatch: unknown payload format, logged timing only: %r", call.request_body[:500])
        return exchange


def _request_id(call: RawCall, exchange: payloads.Exchange | None) -> str:
    """The V2 request's ``id``, else the ``X-Request-ID`` given, else the V2 reply's ``id``, else the one made up."""
    if exchange is not None and exchange.request_id:
        return exchange.request_id
    if call.id_given or exchange is None or not exchange.reply_id:
        return call.request_id
    return exchange.reply_id


def _split_features(features: Any) -> tuple[Any, tuple[Any, ...]]:
    """(named, positional): a mapping is named; a sequence (a list, a numpy row) is positional."""
    if features is None or hasattr(features, "items") or isinstance(features, str | bytes):
        return features, ()
    values = features.tolist() if hasattr(features, "tolist") else features
    return {}, tuple(values)


def _with_positional(record: Json, positional: tuple[Any, ...]) -> Json:
    if positional:
        record[POSITIONAL] = [None if (v := scalar(value)) is _SKIP else v for value in positional]
    return record


def _record(
    request_id: str,
    ts: float,
    features: Json,
    prediction: Any,
    probabilities: Any,
    latency: float | None,
    version: str | None,
    status: str,
) -> Json:
    record: Json = {"request_id": request_id, "timestamp": ts, "features": features, "status": status}
    clean = prediction_value(prediction)
    if clean is not None:
        record["prediction"] = clean
    probs = probabilities_value(probabilities)
    if probs is not None:
        record["probabilities"] = probs
    if latency is not None and math.isfinite(latency) and latency >= 0:
        record["latency_ms"] = float(latency)
    if version is not None:
        record["model_version"] = str(version)[:100]
    return record


def scalar(value: Any) -> Any:
    """A value the API accepts as a feature (numpy scalars unwrapped, NaN → None), else a skip mark."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return scalar(item())
        except (TypeError, ValueError):
            return _SKIP
    return _SKIP


def prediction_value(value: Any) -> Any:
    """A prediction as the API takes it: a scalar or a list of scalars, else None."""
    value = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(value, list | tuple):
        cleaned = [scalar(v) for v in value]
        return None if any(v is _SKIP for v in cleaned) else cleaned
    clean = scalar(value)
    return None if clean is _SKIP else clean


def probabilities_value(value: Any) -> Any:
    """Probabilities as a list or dict of finite floats, else None."""
    value = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(value, dict):
        items = {str(k): scalar(v) for k, v in value.items()}
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in items.values())
        return items if ok and items else None
    if isinstance(value, list | tuple):
        floats = [scalar(v) for v in value]
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in floats)
        return floats if ok and floats else None
    return None
