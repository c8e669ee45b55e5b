"""The one door predictions and labels come in by: schema checks, then the sink.

The API, ``mlwatch ingest`` and in-process writers all call ``Ingestor``; the sink is the
store today, and a message broker can be put behind the same two methods later without
touching checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

from monitor.config import storable_text
from monitor.errors import ValidationFailed
from monitor.records import FeatureValue, IngestResult, LabelRecord, PredictionRecord, Service

INT_BOUND = 2**63
"""Integers are stored and compared as 64-bit numbers: ``-INT_BOUND <= value < INT_BOUND``."""
KEY_CHARS = 200
"""The longest feature name (or other key) a batch may hold."""
VALUE_CHARS = {"categorical": 1000, "text": 100_000, None: 100_000}
"""The longest string value, by feature type (None: a service registered without features)."""
SCALAR_CHARS = 1000
"""The longest string prediction or label."""

_ACCEPTS = {
    "numerical": (int, float),
    "categorical": (str, int, bool),
    "text": (str,),
}
_EXPECTED = {"numerical": "a number", "categorical": "a string, integer or boolean", "text": "a string"}


class Sink(Protocol):
    """Where validated batches go (the Store implements it)."""

    def add_predictions(self, service: Service, records: Sequence[PredictionRecord]) -> IngestResult: ...

    def add_labels(self, service: Service, records: Sequence[LabelRecord]) -> IngestResult: ...


class Ingestor:
    """Validate batches against the service's registered schema, then hand them to the sink."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def predictions(
        self, service: Service, records: Sequence[PredictionRecord], *, field: str = "records"
    ) -> IngestResult:
        """Store a batch of predictions whole, or raise ValidationFailed naming the first bad field."""
        check_batch(service, records, field)
        return self.sink.add_predictions(service, records)

    def labels(self, service: Service, records: Sequence[LabelRecord], *, field: str = "labels") -> IngestResult:
        """Store a batch of labels whole, or raise ValidationFailed."""
        _check_unique([r.request_id for r in records], field)
        return self.sink.add_labels(service, records)


def check_batch(service: Service, records: Sequence[PredictionRecord], field: str = "records") -> None:
    """Raise ValidationFailed for repeated request ids, feature values that are not finite
    scalars, or features outside the service's registered schema (when it has one)."""
    _check_unique([r.request_id for r in records], field)
    types = {f.name: f.type for f in service.features}
    numbers = {name for name, kind in types.items() if kind == "numerical"}
    known = set(types)  # names whose value alone is left to check
    free = not types  # without a schema any storable name is taken; each is checked once a batch
    for i, record in enumerate(records):
        for name, value in record.features.items():
            # The common case, decided inline without a call per value: a finite number in
            # 64 bits (x - x is 0 for finite floats, NaN for NaN and ±inf) for a numerical
            # feature (or any feature of a service without a schema), or None for a known one;
            # bool is not a number here, on purpose.
            if (
                name in numbers
                and (
                    (type(value) is float and value - value == 0)
                    or (type(value) is int and -INT_BOUND <= value < INT_BOUND)
                )
            ) or (value is None and name in known):
                continue
            _check_value(types, name, value, (field, i), service.name)
            if free and name not in known:  # the name passed: later values of it skip its check
                known.add(name)
                numbers.add(name)


_STRINGS = frozenset({"categorical", "text"})


def _check_value(types: dict[str, str], name: str, value: FeatureValue, at: tuple[str, int], service: str) -> None:
    def where() -> str:  # built only when there is something to report
        return f"{at[0]}[{at[1]}].features.{name if len(name) <= 80 else name[:80] + '...'}"

    kind = types.get(name)
    if type(value) is str and kind in _STRINGS and len(value) <= VALUE_CHARS[kind] and value.isprintable():
        return  # the common case of a category or a text; isprintable is False for NUL and surrogates
    if kind is None:
        _check_key(name, where)
        if types and value is not None:
            known = ", ".join(sorted(types)[:20])
            raise ValidationFailed(where(), f"not a registered feature of service {service!r} (registered: {known})")
    problem = scalar_problem(value, VALUE_CHARS.get(kind, SCALAR_CHARS))
    if problem:
        raise ValidationFailed(where(), problem)
    if value is None or kind is None:
        return
    if not isinstance(value, _ACCEPTS[kind]) or (kind == "numerical" and isinstance(value, bool)):
        raise ValidationFailed(where(), f"expected {_EXPECTED[kind]} for a {kind} feature, got {_shown(value)}")


def scalar_problem(value: object, max_chars: int = SCALAR_CHARS) -> str | None:
    """What is wrong with ``value`` as a stored scalar (a feature value, prediction or label), or None.

    A scalar is null, a boolean, a finite number, an integer in 64 bits, or a string of at
    most ``max_chars`` characters that every backend can store.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -INT_BOUND <= value < INT_BOUND else "expected an integer from -2**63 to 2**63 - 1"
    if isinstance(value, float):
        return None if math.isfinite(value) else "expected a finite number, got NaN or infinity"
    if not isinstance(value, str):
        return f"expected a number, string, boolean or null, got {type(value).__name__}"
    if len(value) > max_chars:
        return f"expected a string of at most {max_chars} characters, got {len(value)}"
    try:
        storable_text(value)
    except ValueError as exc:
        return str(exc)
    return None


def _check_key(name: str, where: Callable[[], str]) -> None:
    if len(name) > KEY_CHARS:
        raise ValidationFailed(where(), f"expected a feature name of at most {KEY_CHARS} characters, got {len(name)}")
    try:
        storable_text(name)
    except ValueError as exc:
        raise ValidationFailed(where(), f"feature name: {exc}") from None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _check_unique(request_ids: list[str], field: str) -> None:
    seen: dict[str, int] = {}
    for i, request_id in enumerate(request_ids):
        if request_id in seen:
            raise ValidationFailed(
                f"{field}[{i}].request_id", f"{request_id!r} repeats {field}[{seen[request_id]}] in the same batch"
            )
        seen[request_id] = i
