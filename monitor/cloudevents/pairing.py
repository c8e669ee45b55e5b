"""Joining the request and response events of each inference into prediction records.

    >>> pairing = Pairing(store, Ingestor(store), settings.cloudevents)
    >>> pairing.receive(request_event)     # kept until its response comes
    Outcome(accepted=0, duplicates=0, pending=1)
    >>> pairing.receive(response_event)    # same ce-id: one prediction stored
    Outcome(accepted=1, duplicates=0, pending=0)

Each half is checked when it comes, on its own: a request must be a KServe V1
(``{"instances": [...]}``) or V2 (``{"inputs": [tensors]}``) body whose features pass the
service's schema, a response a V1 (``{"predictions": [...]}``) or V2 (``{"outputs":
[tensors]}``) body of valid predictions; both are read by ``monitor.sdk.payloads``, the parser
the SDK middleware and the proxy use. Values given by position (a V1 instance that is a list,
a V2 tensor of several columns) are named after the service's registered features in order,
else ``f0``, ``f1``, ... (``monitor.sdk.schema``). A request of n > 1 instances gives n
predictions, ``<ce-id>/0`` ... ``<ce-id>/<n-1>``; one instance gives ``<ce-id>``.

Pairing is safe across replicas and restarts: a half is first committed to the store
(``hold_half``), then the event's halves are read. Of two halves that come at once, the one
read last sees both, whatever the interleaving; when both sides see both, both write the
same request ids, and the store keeps one. The halves are dropped only after the
predictions are committed, so a crash in between loses nothing (the halves still pair on a
re-send, and the store skips what it has). A half re-sent after its pair was stored finds
its request ids stored and is not kept again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from monitor.cloudevents.events import InferenceEvent
from monitor.config import CloudEventsConfig
from monitor.errors import NotFound, ValidationFailed
from monitor.ingest import Ingestor, check_batch
from monitor.records import FeatureValue, PredictionRecord, Service
from monitor.sdk import payloads
from monitor.sdk.schema import Schema, positional_name
from monitor.server.errors import field_path
from monitor.server.schemas import PredictionIn
from monitor.store import Store
from monitor.store.halves import Half
from monitor.store.request_ids import stored_count
from monitor.store.storable import check_time

MAX_ID_CHARS = 200
"""The longest request id a prediction may have (``<ce-id>/<i>`` included)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What events did: predictions stored, predictions already stored, halves left waiting for their pair."""

    accepted: int = 0
    duplicates: int = 0
    pending: int = 0

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(self.accepted + other.accepted, self.duplicates + other.duplicates, self.pending + other.pending)


@dataclass(frozen=True, slots=True)
class _Output:
    prediction: Any
    probabilities: Any
    model_version: str | None


class Pairing:
    """Joins KServe's request and response events by ``ce-id`` and stores each pair through ``ingestor``."""

    def __init__(
        self,
        store: Store,
        ingestor: Ingestor,
        config: CloudEventsConfig,
        *,
        max_rows: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ingestor = ingestor
        self.config = config
        self.max_rows = max_rows
        self.clock = clock

    def receive(self, event: InferenceEvent) -> Outcome:
        """Check ``event``, keep it until its other half comes, and store the pair when it has.

        Raises ValidationFailed (what is wrong, and where) or NotFound (no such service).
        """
        service = self.service_of(event)
        count = self._check(service, event)
        ids = request_ids(event.id, count)
        if stored_count(self.store.engine, service.id, ids) == len(ids):
            return Outcome(duplicates=len(ids))
        now = self.clock()
        half = Half(
            service.id,
            event.id,
            event.component,
            event.kind,
            event.time if event.time is not None else now,
            _json_text(event.data),
            now + self.config.pending_ttl,
        )
        self.store.hold_half(half, now)
        halves = self.store.event_halves(service.id, event.id, event.component, now)
        if set(halves) != {"request", "response"}:
            return Outcome(pending=1)
        records = self._join(service, halves["request"], halves["response"], event.kind)
        result = self.ingestor.predictions(service, records, field="data")
        self.store.drop_halves(service.id, event.id, event.component)
        return Outcome(accepted=result.accepted, duplicates=result.duplicates)

    def service_of(self, event: InferenceEvent) -> Service:
        """The service an event is for: its InferenceService as mapped in ``cloudevents.services``, else by name."""
        name = event.inference_service
        if not name:
            raise ValidationFailed(
                "ce-inferenceservicename", "missing: expected the InferenceService the event is for (KServe sets it)"
            )
        mapping = self.config.services
        target = mapping.get(f"{event.namespace}/{name}") or mapping.get(name) or name
        try:
            return self.store.get_service(target)
        except NotFound as exc:
            raise NotFound(
                f"{exc}; or map InferenceService {name!r} to a registered service "
                "in cloudevents.services of mlwatch.yaml"
            ) from exc

    def _check(self, service: Service, event: InferenceEvent) -> int:
        """The number of predictions the half gives; ValidationFailed when it is not a valid half."""
        if event.time is not None:
            check_time("ce-time", event.time)  # the predictions' time: refused now, not when the pair is stored
        rows = len(features_of(service, event.data)) if event.kind == "request" else len(outputs_of(event.data))
        if rows > self.max_rows:
            raise ValidationFailed("data", f"at most {self.max_rows} rows per event, got {rows}; split the request")
        last = request_ids(event.id, rows)[-1]
        if len(last) > MAX_ID_CHARS:
            raise ValidationFailed(
                "ce-id", f"expected at most {MAX_ID_CHARS} characters with its row suffix, got {last!r:.80}"
            )
        return rows

    def _join(self, service: Service, request: Half, response: Half, arrived: str) -> list[PredictionRecord]:
        features = features_of(service, orjson.loads(request.data))
        outputs = outputs_of(orjson.loads(response.data))
        if len(features) != len(outputs):
            self.store.drop_halves(request.service_id, request.event_id, request.component, arrived)
            raise ValidationFailed(
                "data",
                f"the response has {len(outputs)} prediction(s) for the {len(features)} instance(s) of its request "
                f"(ce-id {request.event_id!r}); the {arrived} was not kept",
            )
        ids = request_ids(request.event_id, len(features))
        return [
            PredictionRecord(rid, request.ts, row, out.prediction, out.probabilities, None, out.model_version)
            for rid, row, out in zip(ids, features, outputs, strict=True)
        ]


def _json_text(data: Any) -> str:
    try:
        return orjson.dumps(data).decode()
    except TypeError:  # parsed from structured mode, where an integer may pass 64 bits
        raise ValidationFailed("data", "expected integers from -2**63 to 2**64 - 1 in the body") from None


def request_ids(event_id: str, rows: int) -> list[str]:
    """The request ids of an event's predictions: ``event_id`` for one row, ``<event_id>/<i>`` for several."""
    return [event_id] if rows == 1 else [f"{event_id}/{i}" for i in range(rows)]


_BODIES = {"request": ("instances", "inputs"), "response": ("predictions", "outputs")}
"""The key of a KServe V1 body and of a V2 body, by half."""


def _protocol_key(data: Any, kind: str) -> str:
    """The V1 or V2 key ``data`` has as the body of a ``kind``; ValidationFailed when it has neither."""
    v1, v2 = _BODIES[kind]
    found = next((key for key in (v1, v2) if isinstance(data, dict) and key in data), None)
    if found is None:
        expected = f"a KServe V1 {kind} ({{'{v1}': [...]}}) or V2 {kind} ({{'{v2}': [tensors]}})"
        raise ValidationFailed("data", f"expected {expected}, got {data!r:.80}")
    return found


def features_of(service: Service, data: Any) -> list[dict[str, FeatureValue]]:
    """The features of each instance of a KServe V1 or V2 request, checked against the service's schema."""
    key = _protocol_key(data, "request")
    rows = payloads.request_rows(data)
    if not rows:
        raise ValidationFailed(f"data.{key}", "expected rows (V1) or tensors with name, shape and data (V2), none read")
    schema = Schema(tuple((f.name, f.type) for f in service.features))
    features = [_named(schema, row) for row in rows]
    check_batch(service, [PredictionRecord(str(i), 0.0, f) for i, f in enumerate(features)], "data")
    return features


def _named(schema: Schema, row: payloads.Row) -> dict[str, FeatureValue]:
    if not row.positional:
        return row.features
    count = len(row.positional)
    names = schema.names_for(row.features, count) or [positional_name(i) for i in range(count)]
    return {**row.features, **dict(zip(names, row.positional, strict=True))}


def outputs_of(data: Any) -> list[_Output]:
    """The prediction (and probabilities) of each instance of a KServe V1 or V2 response, checked."""
    key = _protocol_key(data, "response")
    found = payloads.reply_outputs(data)
    if not found:
        raise ValidationFailed(
            f"data.{key}", "expected a prediction per instance (V1) or output tensors (V2), none read"
        )
    version = data.get("model_version")
    version = version if isinstance(version, str) else None
    return [_output(i, p, q, version) for i, (p, q) in enumerate(found)]


def _output(i: int, prediction: Any, probabilities: Any, version: str | None) -> _Output:
    try:
        checked = PredictionIn.model_validate(
            {"prediction": prediction, "probabilities": probabilities, "model_version": version}
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ValidationFailed(
            f"data[{i}].{field_path(error['loc'])}", error["msg"].removeprefix("Value error, ")
        ) from None
    return _Output(checked.prediction, checked.probabilities, checked.model_version)
