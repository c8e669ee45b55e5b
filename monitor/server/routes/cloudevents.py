"""``POST /v1/cloudevents``: KServe's InferenceLogger as a payload source (``monitor.cloudevents``).

Point an InferenceService's logger at it (``logger: {mode: all, url:
https://mlwatch.example.com/v1/cloudevents}``). It needs an ingest token like the other ingest
endpoints; where the logger sends no ``Authorization`` header of its own, add
``Authorization: Bearer <token>`` on the way (a mesh or gateway in front of mlwatch).
``mode: all`` is needed: a request whose response is never logged waits, then expires.

Three encodings of the same events, as the CloudEvents HTTP binding defines them:

- binary mode (what KServe sends): the attributes in ``ce-*`` headers (values percent-encoded),
  the body the inference's JSON request or response;
- structured mode: ``Content-Type: application/cloudevents+json``, one ``CloudEventIn``;
- batched: ``Content-Type: application/cloudevents-batch+json``, a JSON array of them, taken in
  order (each event is kept or paired on its own: an invalid one stops the batch there, and
  the events before it stay received).

KServe's logger treats any status but 200 as a failure, so every event that is taken is
answered 200, also one that waits for its other half.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

from monitor.cloudevents.events import REQUEST, RESPONSE, CloudEventIn, InferenceEvent
from monitor.cloudevents.pairing import Outcome, Pairing
from monitor.errors import ValidationFailed
from monitor.server.auth import Principal, require
from monitor.server.body import decoded_body

router = APIRouter(tags=["ingest"])
Ingest = Annotated[Principal, Depends(require("ingest"))]
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
T = TypeVar("T")
_BATCH: TypeAdapter[list[CloudEventIn]] = TypeAdapter(list[CloudEventIn])


class CloudEventsOut(BaseModel):
    """What the events did: predictions stored, predictions already stored, events waiting for their other half."""

    accepted: int
    duplicates: int
    pending: int


async def _events(request: Request) -> list[InferenceEvent]:
    """The request's events, in any mode (read after authentication, like every body)."""
    kind = _media_type(request)
    raw = await request.body()
    if kind == BATCH:
        events = await decoded_body(lambda body: _BATCH.validate_json(body or b"null"))(request)
        return [_indexed(i, InferenceEvent.of, e) for i, e in enumerate(events)]
    if kind == STRUCTURED:
        event = await decoded_body(lambda body: CloudEventIn.model_validate_json(body or b"null"))(request)
        return [InferenceEvent.of(event)]
    return [InferenceEvent.of(_binary_attributes(request.headers, kind), raw)]


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _indexed(i: int, step: Callable[..., T], *args: Any) -> T:
    """``step(*args)`` for the ``i``-th event of a batch: a ValidationFailed names the event."""
    try:
        return step(*args)
    except ValidationFailed as exc:
        raise ValidationFailed(f"[{i}].{exc.field}", exc.message) from exc


def _binary_attributes(headers: Mapping[str, str], content_type: str) -> CloudEventIn:
    attributes: dict[str, Any] = {k[3:].lower(): unquote(v) for k, v in headers.items() if k.lower().startswith("ce-")}
    if not attributes:
        raise ValidationFailed(
            "ce-id",
            "missing: expected a binary-mode CloudEvent (ce-specversion, ce-id, ce-source and ce-type headers) "
            f"or a structured one (Content-Type: {STRUCTURED} or {BATCH})",
        )
    attributes.pop("data", None)  # binary mode's data is the body
    attributes.pop("data_base64", None)
    if content_type:
        attributes["datacontenttype"] = content_type
    try:
        return CloudEventIn.model_validate(attributes)
    except ValidationError as exc:
        errors = [{**e, "loc": (f"ce-{e['loc'][0]}", *e["loc"][1:]) if e["loc"] else ("ce-*",)} for e in exc.errors()]
        raise RequestValidationError(errors) from exc


_HEADERS = [
    ("ce-specversion", True, {"type": "string", "enum": ["1.0"]}),
    ("ce-id", True, {"type": "string", "minLength": 1, "maxLength": 200}),
    ("ce-source", True, {"type": "string", "minLength": 1, "maxLength": 253}),
    ("ce-type", True, {"type": "string", "enum": [REQUEST, RESPONSE]}),
    ("ce-time", False, {"type": "string", "format": "date-time"}),
    ("ce-inferenceservicename", False, {"type": "string", "maxLength": 253}),
    ("ce-namespace", False, {"type": "string", "maxLength": 253}),
    ("ce-component", False, {"type": "string", "maxLength": 100}),
    ("ce-endpoint", False, {"type": "string", "maxLength": 253}),
]
_OPENAPI: dict[str, Any] = {
    "parameters": [
        {"name": name, "in": "header", "required": False, "schema": schema, "description": "binary mode"}
        for name, _, schema in _HEADERS
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "binary mode: the KServe V1 or V2 request or response"}
            },
            STRUCTURED: {"schema": {"$ref": "#/components/schemas/CloudEventIn"}},
            BATCH: {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/CloudEventIn"}}},
        },
    },
}


@router.post("/v1/cloudevents", response_model=CloudEventsOut, openapi_extra=_OPENAPI)
def receive_cloudevents(
    _: Ingest, events: Annotated[list[InferenceEvent], Depends(_events)], request: Request
) -> CloudEventsOut:
    """Take KServe InferenceLogger events; a request and its response (one ``ce-id``) make predictions."""
    limit: int = request.app.state.settings.max_batch_records
    if len(events) > limit:
        raise ValidationFailed("body", f"at most {limit} events per batch, got {len(events)}; split the batch")
    pairing = Pairing(
        request.app.state.store, request.app.state.ingestor, request.app.state.settings.cloudevents, max_rows=limit
    )
    batched = _media_type(request) == BATCH
    total = Outcome()
    waiting: set[tuple[str | None, str | None, str, str]] = set()
    for i, event in enumerate(events):
        outcome = _indexed(i, pairing.receive, event) if batched else pairing.receive(event)
        total += outcome
        key = (event.inference_service, event.namespace, event.component, event.id)
        (waiting.add if outcome.pending else waiting.discard)(key)  # a batch may hold both halves
    return CloudEventsOut(accepted=total.accepted, duplicates=total.duplicates, pending=len(waiting))
