"""The JSON Schema of ``mlwatch.event/v1``, the generic JSON body receivers get.

Served at ``GET /v1/webhooks/schema`` so receivers can validate what they are sent. Within
v1 fields are only ever added (receivers must ignore unknown ones); a breaking change
becomes ``mlwatch.event/v2``.
"""

from __future__ import annotations

from typing import Any

from monitor.webhooks.events import EVENT_TYPES
from monitor.webhooks.formats import SCHEMA
from monitor.webhooks.routing import SEVERITIES

_ALERT_DATA: dict[str, Any] = {
    "type": "object",
    "description": "alert.* events: the alert after the change",
    "required": ["id", "fingerprint", "rule", "kind", "state", "severity", "labels", "summary", "started_at"],
    "properties": {
        "id": {"type": "integer"},
        "fingerprint": {"type": "string", "description": "stable id of rule + scope"},
        "rule": {"type": "string"},
        "kind": {"type": "string"},
        "service": {"type": ["string", "null"]},
        "state": {"enum": ["pending", "firing", "resolved"]},
        "severity": {"enum": list(SEVERITIES)},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "value": {"type": ["number", "null"]},
        "threshold": {"type": ["number", "null"]},
        "summary": {"type": "string"},
        "started_at": {"type": "number", "description": "epoch seconds"},
        "fired_at": {"type": ["number", "null"]},
        "resolved_at": {"type": ["number", "null"]},
        "acked_by": {"type": ["string", "null"]},
        "repeat_interval": {"type": "number", "description": "seconds between reminders while it fires"},
    },
}

EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://mlwatch.dev/schemas/mlwatch.event/v1.json",
    "title": SCHEMA,
    "type": "object",
    "required": ["schema", "id", "type", "timestamp", "severity", "labels", "dashboard_url", "data"],
    "properties": {
        "schema": {"const": SCHEMA},
        "id": {"type": "string", "description": "event id; equals the webhook-id header, the same on every retry"},
        "type": {"type": "string", "examples": list(EVENT_TYPES)},
        "timestamp": {"type": "string", "format": "date-time", "description": "when it happened, UTC"},
        "severity": {"enum": list(SEVERITIES)},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "dashboard_url": {"type": "string", "format": "uri"},
        "data": {"type": "object"},
    },
    "if": {"properties": {"type": {"pattern": "^alert\\."}}},
    "then": {"properties": {"data": _ALERT_DATA}},
}
"""JSON Schema (2020-12) of the ``json`` format's body."""
