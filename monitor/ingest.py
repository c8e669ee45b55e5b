"""The one door predictions and labels come in by: schema checks, then the sink.

The API, ``mlwatch ingest`` and in-process writers all call ``Ingestor``; the sink is the
store today, and a message broker can be put behind the same two methods later without
touching checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from monitor.errors import ValidationFailed
from monitor.records import FeatureValue, IngestResult, LabelRecord, PredictionRecord, Service

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
    numerical = {name for name, kind in types.items() if kind == "numerical"}
    for i, record in enumerate(records):
        for name, value in record.features.items():
            # The common case, decided inline without a call per value: None, or a finite
            # number (x - x is 0 for finite numbers, NaN for NaN and ±inf) for a numerical
            # feature; bool is not a number here, on purpose.
            if value is None or (
                name in numerical and (type(value) is int or (type(value) is float and value - value == 0))
            ):
                continue
            _check_value(types, name, value, (field, i), service.name)


_SCALARS = (str, bool, int, float)


def _check_value(types: dict[str, str], name: str, value: FeatureValue, at: tuple[str, int], service: str) -> None:
    def where() -> str:  # built only when there is something to report
        return f"{at[0]}[{at[1]}].features.{name}"

    if not isinstance(value, _SCALARS):
        raise ValidationFailed(where(), f"expected a number, string, boolean or null, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationFailed(where(), "expected a finite number, got NaN or infinity")
    if not types:
        return  # a service registered without features accepts any scalar
    kind = types.get(name)
    if kind is None:
        known = ", ".join(sorted(types)[:20])
        raise ValidationFailed(where(), f"not a registered feature of service {service!r} (registered: {known})")
    if not isinstance(value, _ACCEPTS[kind]) or (kind == "numerical" and isinstance(value, bool)):
        raise ValidationFailed(where(), f"expected {_EXPECTED[kind]} for a {kind} feature, got {value!r}")


def _check_unique(request_ids: list[str], field: str) -> None:
    seen: dict[str, int] = {}
    for i, request_id in enumerate(request_ids):
        if request_id in seen:
            raise ValidationFailed(
                f"{field}[{i}].request_id", f"{request_id!r} repeats {field}[{seen[request_id]}] in the same batch"
            )
        seen[request_id] = i
