"""The fast path for prediction batches: msgspec decodes and type-checks them in one pass.

``PredictionBatch`` (pydantic) is the contract: it is the OpenAPI schema and it writes the
error messages. Decoding a 500-record batch with it cost a third of an ingest call, so
``decode_predictions`` first tries msgspec (six times faster) against a mirror of the same
shape that accepts a subset of what pydantic accepts and yields the same records. Anything
the mirror does not take (a bad value, NaN, a NUL in text, a millisecond timestamp, a lax
coercion such as ``"5"`` for a number, a body too deep or not UTF-8) goes through pydantic,
which either accepts it the same way or names the field that is wrong (a 400 for what is
not JSON). ``tests/server/test_wire.py`` checks the two agree. The extra checks cost about
0.05 ms on a 500-record batch (2.22 ms against 2.16 ms to decode, best of 30 x 10).
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from pydantic import TypeAdapter, ValidationError

from monitor.records import PredictionRecord
from monitor.server.schemas import LATENCY_MAX_MS, PROBABILITY_MAX, PredictionBatch, epoch, prediction_value

_PYDANTIC_SECONDS = 2e10
"""pydantic reads a number above this as milliseconds; the fast path leaves those to it."""


_Key = Annotated[str, msgspec.Meta(max_length=200)]
_Probability = Annotated[float, msgspec.Meta(ge=0, le=PROBABILITY_MAX)]


class _Prediction(msgspec.Struct, forbid_unknown_fields=True):
    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    timestamp: float | str | None = None
    features: Annotated[dict[str, Any], msgspec.Meta(max_length=5000)] = msgspec.field(default_factory=dict)
    prediction: Any = None
    probabilities: (
        Annotated[dict[_Key, _Probability], msgspec.Meta(max_length=10_000)]
        | Annotated[list[_Probability], msgspec.Meta(max_length=10_000)]
        | None
    ) = None
    latency_ms: Annotated[float, msgspec.Meta(ge=0, le=LATENCY_MAX_MS)] | None = None
    model_version: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    status: Literal["ok", "error"] = "ok"


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    records: Annotated[list[_Prediction], msgspec.Meta(min_length=1)]


_DECODER = msgspec.json.Decoder(_Batch)
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


class _NotFast(Exception):
    """The fast path declines; pydantic decides."""


def decode_predictions(raw: bytes) -> list[PredictionRecord]:
    """The records of a ``PredictionBatch`` body; pydantic's ValidationError when it is not one."""
    try:
        return [_record(p) for p in _DECODER.decode(raw).records]
    except (msgspec.DecodeError, _NotFast, RecursionError, UnicodeDecodeError):
        # msgspec raises the last two for a body nested too deep or not UTF-8; pydantic
        # parses those into a 400 that says where.
        return [r.record() for r in PredictionBatch.model_validate_json(raw or b"null").records]


def _record(p: _Prediction) -> PredictionRecord:
    if p.latency_ms is not None and not math.isfinite(p.latency_ms):
        raise _NotFast
    # NUL is the one character msgspec passes that a store refuses (it refuses lone surrogates).
    if (p.request_id is not None and "\x00" in p.request_id) or (
        p.model_version is not None and "\x00" in p.model_version
    ):
        raise _NotFast
    probabilities = p.probabilities
    if probabilities is not None:
        values = probabilities.values() if isinstance(probabilities, dict) else probabilities
        if not all(math.isfinite(v) for v in values):
            raise _NotFast
        if isinstance(probabilities, dict) and any("\x00" in k for k in probabilities):
            raise _NotFast
    try:
        prediction = prediction_value(p.prediction)
    except ValueError:
        raise _NotFast from None
    return PredictionRecord(
        request_id=p.request_id or uuid.uuid4().hex,
        ts=_timestamp(p.timestamp),
        features=p.features,
        prediction=prediction,
        probabilities=probabilities,
        latency_ms=p.latency_ms,
        model_version=p.model_version,
        status=p.status,
    )


def _timestamp(value: float | str | None) -> float:
    if isinstance(value, float):
        if -_PYDANTIC_SECONDS <= value <= _PYDANTIC_SECONDS:
            return value
        raise _NotFast
    try:
        return epoch(None if value is None else _DATETIME.validate_python(value))
    except ValidationError:
        raise _NotFast from None
