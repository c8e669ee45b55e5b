"""One CloudEvent of KServe's InferenceLogger: its attributes, validated, and its JSON payload.

    >>> event = InferenceEvent.of(CloudEventIn(id="r1", source="/isvc", type=REQUEST), b'{"instances": [[1, 2]]}')
    >>> event.kind, event.data
    ('request', {'instances': [[1, 2]]})

``CloudEventIn`` is the structured-mode body (``application/cloudevents+json``); the binary
mode's ``ce-*`` headers are read into the same model, so both modes are checked alike.
Attributes KServe adds that mlwatch does not use (``metadata``, ``annotations``) and any
other extension are allowed and ignored.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from monitor.config import Text, check_depth, storable_text
from monitor.errors import ValidationFailed
from monitor.server.schemas import epoch

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
KINDS = {REQUEST: "request", RESPONSE: "response"}
"""``ce-type`` → the half of an inference it carries (``monitor.store.halves.KINDS``)."""

Attribute = Annotated[str, StringConstraints(max_length=253), AfterValidator(storable_text)]
"""A context attribute: a Kubernetes name at most, storable on every backend."""


class CloudEventIn(BaseModel):
    """A CloudEvent (spec 1.0) as KServe's InferenceLogger sends it; in binary mode these are ``ce-*`` headers."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = Field(description="CloudEvents spec version")
    id: Annotated[Text, StringConstraints(min_length=1)] = Field(description="the inference's request id")
    source: Annotated[Attribute, StringConstraints(min_length=1)]
    type: Literal["org.kubeflow.serving.inference.request", "org.kubeflow.serving.inference.response"]
    time: datetime | None = None
    datacontenttype: Attribute | None = None
    inferenceservicename: Attribute | None = Field(default=None, description="the InferenceService (KServe sets it)")
    namespace: Attribute | None = None
    component: Annotated[str, StringConstraints(max_length=100), AfterValidator(storable_text)] | None = None
    endpoint: Attribute | None = None
    data: Any = Field(default=None, description="structured mode: the KServe V1 or V2 body")
    data_base64: str | None = Field(default=None, description="structured mode: the body, base64-encoded")


@dataclass(frozen=True, slots=True)
class InferenceEvent:
    """The request or response half of one inference, with the attributes that place it."""

    kind: str  # request or response
    id: str
    inference_service: str | None
    namespace: str | None
    component: str  # '' when not given
    time: float | None
    data: Any  # the decoded JSON payload

    @classmethod
    def of(cls, event: CloudEventIn, body: bytes | None = None) -> InferenceEvent:
        """From validated attributes and the binary-mode body (None: the structured event's own data)."""
        return cls(
            kind=KINDS[event.type],
            id=event.id,
            inference_service=event.inferenceservicename,
            namespace=event.namespace,
            component=event.component or "",
            time=epoch(event.time) if event.time is not None else None,
            data=_payload(event, body),
        )


def _payload(event: CloudEventIn, body: bytes | None) -> Any:
    if body is not None:
        return decode_json(body, "data")
    if event.data_base64 is not None:
        try:
            raw = base64.b64decode(event.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed("data_base64", "expected base64 of a JSON body") from None
        return decode_json(raw, "data_base64")
    if event.data is None:
        raise ValidationFailed("data", "expected the KServe V1 or V2 body of the inference, got none")
    if isinstance(event.data, str):  # a JSON body sent as a string
        return decode_json(event.data.encode(), "data")
    return _shallow(event.data, "data")


def decode_json(raw: bytes, field: str) -> Any:
    """``raw`` as JSON (no NaN, 64-bit integers), nested at most ``MAX_DEPTH`` deep; ValidationFailed otherwise."""
    if not raw.strip():
        raise ValidationFailed(field, "expected the KServe V1 or V2 body of the inference, got an empty body")
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # its text is a library's: say where, in words of our own
        problem = f"not valid JSON at line {exc.lineno} column {exc.colno} (NaN and Infinity are not JSON)"
        raise ValidationFailed(field, f"expected a JSON body, {problem}") from None
    return _shallow(found, field)


def _shallow(value: Any, field: str) -> Any:
    try:
        return check_depth(value)
    except ValueError as exc:
        raise ValidationFailed(field, str(exc)) from None
