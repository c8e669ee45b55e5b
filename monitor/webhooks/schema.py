"""The JSON Schema of ``mlwatch.event/v1``, the generic JSON body receivers get.

Served at ``GET /v1/webhooks/schema`` so receivers can validate what they are sent. Within
v1 fields are only ever added (receivers must ignore unknown ones); a breaking change
becomes ``mlwatch.event/v2``. A receiver configured with ``group_by`` gets alert events whose
``data`` holds ``alerts`` (each shaped as an ungrouped alert event's ``data``) and ``group``.
"""

from __future__ import annotations

from typing import Any

from monitor.vocabulary import EVENT_TYPES, SEVERITIES
from monitor.webhooks.formats import SCHEMA

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
        "inhibited_by": {"type": ["integer", "null"], "description": "id of the firing alert that mutes this one"},
    },
}

_GROUP_DATA: dict[str, Any] = {
    "type": "object",
    "description": "alert.* events of a receiver with group_by: the alerts of one group, in one notification",
    "required": ["alerts", "group"],
    "properties": {
        "alerts": {"type": "array", "minItems": 1, "items": _ALERT_DATA},
        "group": {
            "type": "object",
            "required": ["key", "labels"],
            "properties": {
                "key": {"type": "string", "description": "stable id of the group_by label values"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "repeat_interval": {"type": "number", "description": "seconds between notifications of an unchanged group"},
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
    "then": {"properties": {"data": {"anyOf": [_GROUP_DATA, _ALERT_DATA]}}},
}
"""JSON Schema (2020-12) of the ``json`` format's body."""
