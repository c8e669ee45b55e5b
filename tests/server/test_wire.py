"""The msgspec fast path for prediction batches agrees with the pydantic contract."""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor.records import PredictionRecord
from monitor.server import wire
from monitor.server.schemas import PredictionBatch
from monitor.server.wire import decode_predictions

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
_anything = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner)
)
_record = st.fixed_dictionaries(
    {},
    optional={
        "request_id": st.one_of(st.none(), st.text(max_size=3), st.just("x" * 201), st.integers(0, 5)),
        "timestamp": st.one_of(
            st.none(),
            st.floats(-3e10, 3e10),
            st.integers(-(2**40), 2**40),
            st.sampled_from(["2026-11-26T10:00:00", "2026-11-26T10:00:00+02:00", "2026-11-26", "soon", "1700000000"]),
        ),
        "features": st.dictionaries(st.sampled_from(["age", "city", "x"]), _anything, max_size=3) | _anything,
        "prediction": _anything,
        "probabilities": st.one_of(
            st.none(),
            st.lists(st.floats(-1, 2) | st.integers(0, 1) | st.text(max_size=2), max_size=3),
            st.dictionaries(st.sampled_from(["0", "1"]), st.floats(0, 1) | st.booleans()),
        ),
        "latency_ms": st.one_of(st.none(), st.floats(-5, 1e6), st.integers(-3, 10**400), st.text(max_size=3)),
        "model_version": st.one_of(st.none(), st.text(max_size=3), st.just("v" * 101), st.integers(0, 3)),
        "status": st.sampled_from(["ok", "error", "meh", 1]),
        "unknown": st.just(1),
    },
)
_body = st.one_of(
    st.fixed_dictionaries({"records": st.lists(_record, max_size=3)}),
    _anything,
).map(lambda body: json.dumps(body).encode())  # the standard library writes integers of any size


def _pydantic(raw: bytes) -> list[PredictionRecord] | str:
    try:
        return [r.record() for r in PredictionBatch.model_validate_json(raw or b"null").records]
    except ValidationError as exc:
        return str(exc)


def _fast(raw: bytes) -> list[PredictionRecord] | str:
    try:
        return decode_predictions(raw)
    except ValidationError as exc:
        return str(exc)


def _same(fast: list[PredictionRecord] | str, slow: list[PredictionRecord] | str) -> None:
    if isinstance(slow, str):
        assert fast == slow  # refused, with pydantic's own message
        return
    assert isinstance(fast, list) and len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        assert a.ts == pytest.approx(b.ts, abs=1e-5) or (a.ts > 1.7e9 and b.ts > 1.7e9)  # both "now" when absent
        generated = a.request_id != b.request_id
        assert not generated or (len(a.request_id) == len(b.request_id) == 32)
        for name in ("features", "prediction", "probabilities", "latency_ms", "model_version", "status"):
            left, right = getattr(a, name), getattr(b, name)
            assert repr(left) == repr(right) and type(left) is type(right), name  # repr: NaN equals itself


@settings(max_examples=400, deadline=None)
@given(_body)
def test_fast_path_accepts_and_refuses_exactly_what_pydantic_does(raw: bytes) -> None:
    _same(_fast(raw), _pydantic(raw))


LITERALS = [
    b'{"records": [{"features": {"age": NaN}}]}',
    b'{"records": [{"latency_ms": Infinity}]}',
    b'{"records": [{"latency_ms": 1e400}]}',
    b'{"records": [{"probabilities": [0.5, NaN]}]}',
    b'{"records": [{"timestamp": 1764150000000}]}',  # milliseconds: pydantic's reading
    b'{"records": [{"timestamp": "2026-11-26 10:00:00"}]}',
    b'{"records": [{"latency_ms": "5"}]}',  # pydantic's lax number from a string
    b'{"records": [{"latency_ms": true}]}',
    b'{"records": [{"request_id": "a", "request_id": "b"}]}',
    b'{"records": [{"prediction": [[1]]}]}',
    b'{"records": [{"features": {"age": 1}, "features": {"city": "x"}}]}',
    b'{"records": []}',
    b"",
    b"[]",
]


@pytest.mark.parametrize("raw", LITERALS)
def test_edge_cases_agree(raw: bytes) -> None:
    _same(_fast(raw), _pydantic(raw))


def test_a_valid_batch_takes_the_fast_path_and_keeps_every_field() -> None:
    raw = orjson.dumps(
        {
            "records": [
                {
                    "request_id": "r1",
                    "timestamp": 1764150000.25,
                    "features": {"age": 41, "city": "Lyon", "score": 0.5, "flag": True, "none": None},
                    "prediction": [0, 1],
                    "probabilities": {"0": 0.25, "1": 0.75},
                    "latency_ms": 3,
                    "model_version": "7",
                    "status": "error",
                }
            ]
        }
    )
    [record] = decode_predictions(raw)
    assert [record] == [wire._record(p) for p in wire._DECODER.decode(raw).records]  # no pydantic fallback
    assert record == PredictionRecord(
        "r1", 1764150000.25, {"age": 41, "city": "Lyon", "score": 0.5, "flag": True, "none": None}, [0, 1],
        {"0": 0.25, "1": 0.75}, 3.0, "7", "error",
    )  # fmt: skip
    assert isinstance(record.latency_ms, float) and not math.isnan(record.latency_ms)
