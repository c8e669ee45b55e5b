"""Alerts and their handling (ack, silences), alert rules, and the webhook delivery log.

GET    /v1/alerts                   viewer    alerts, newest first (?state=&service=&rule=)
GET    /v1/alerts/{id}              viewer
POST   /v1/alerts/{id}/ack          operator  no more reminders for this alert
GET    /v1/silences                 viewer    (?active=true for those in force)
POST   /v1/silences                 operator  {matchers, ends_at | duration, comment}
DELETE /v1/silences/{id}            operator  ends it now
GET    /v1/alert-rules[/{name}]     operator
PUT    /v1/alert-rules/{name}       operator  create or replace an API rule
DELETE /v1/alert-rules/{name}       operator
GET    /v1/webhooks/deliveries      viewer    the delivery log, newest attempts each (?receiver=&status=&event_id=)
GET    /v1/webhooks/deliveries/{id} viewer    one delivery with every attempt
POST   /v1/webhooks/test            admin     a test event to one receiver or all
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from monitor.alerts.acknowledge import acknowledge
from monitor.alerts.kinds import check_rule
from monitor.config import AlertRuleConfig, LongText, Settings, Text, parse_positive_duration
from monitor.errors import ValidationFailed
from monitor.server.auth import Principal, require
from monitor.server.body import (
    decoded_body,
    json_body,
    object_body,
    openapi_body,
    openapi_object_body,
    optional_json_body,
)
from monitor.server.routes.services import StoreDep
from monitor.server.schemas import ObjectId, QueryText, epoch
from monitor.store import Store
from monitor.store.alerts import AlertRecord, SilenceRecord, StoredRule
from monitor.store.outbox import Delivery
from monitor.webhooks.events import send_test_event

router = APIRouter(tags=["alerts"])
Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Limit = Annotated[int, Query(ge=1, le=1000)]
RuleName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class AckIn(_Body):
    """Acknowledge an alert."""

    comment: LongText = ""


class SilenceIn(_Body):
    """Silence alerts whose labels match every matcher, until ``ends_at`` (or for ``duration``)."""

    matchers: dict[Text, Text] = Field(
        min_length=1, max_length=20, description="label -> value, e.g. {'service': 'credit'}"
    )
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="e.g. '2h'; instead of ends_at"
    )
    comment: LongText = ""

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_positive_duration(value)
        return value


class SilenceOut(BaseModel):
    """A silence and whether it is in force."""

    id: int
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    active: bool


class RuleOut(BaseModel):
    """A stored alert rule."""

    name: str
    source: Literal["config", "api"]
    enabled: bool
    updated_at: float
    spec: dict[str, Any]


class TestEventIn(_Body):
    """Send a test event to one receiver (by name) or to all."""

    receiver: Text | None = None


class TestEventOut(BaseModel):
    """The test event's id (its ``webhook-id``) and where it was queued."""

    event_id: str
    receivers: list[str]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


def _rules_store(request: Request, store: StoreDep) -> Store:
    """The store, with the configured rules synced in once per app (so they list as source 'config')."""
    if not getattr(request.app.state, "alert_rules_synced", False):
        from monitor.alerts.engine import config_rule_specs

        store.sync_config_rules(config_rule_specs(request.app.state.settings))
        request.app.state.alert_rules_synced = True
    return store


RulesStore = Annotated[Store, Depends(_rules_store)]


def _silence_out(silence: SilenceRecord, now: float) -> SilenceOut:
    return SilenceOut(**asdict(silence), active=silence.active(now))


def _rule_out(rule: StoredRule) -> RuleOut:
    return RuleOut.model_validate(rule, from_attributes=True)


@router.get("/v1/alerts", response_model=list[AlertRecord])
def list_alerts(
    store: StoreDep,
    _: Viewer,
    state: Literal["pending", "firing", "resolved"] | None = None,
    service: QueryText = None,
    rule: QueryText = None,
    limit: Limit = 100,
) -> list[AlertRecord]:
    """Alerts, newest first."""
    return store.list_alerts(state=state, service=service, rule=rule, limit=limit)


@router.get("/v1/alerts/{alert_id}", response_model=AlertRecord)
def get_alert(alert_id: ObjectId, store: StoreDep, _: Viewer) -> AlertRecord:
    """One alert."""
    return store.get_alert(alert_id)


@router.post("/v1/alerts/{alert_id}/ack", response_model=AlertRecord, openapi_extra=openapi_body(AckIn, required=False))
def ack_alert(
    who: Operator,
    alert_id: ObjectId,
    body: Annotated[AckIn | None, Depends(optional_json_body(AckIn))],
    store: StoreDep,
    settings: SettingsDep,
) -> AlertRecord:
    """Acknowledge an alert: it keeps firing until it clears, but sends no more reminders.

    Receivers that take ``alert.acknowledged`` are told (PagerDuty acknowledges its incident).
    """
    return acknowledge(store, settings, alert_id, who.name, time.time(), (body or AckIn()).comment)


@router.get("/v1/silences", response_model=list[SilenceOut])
def list_silences(store: StoreDep, _: Viewer, active: bool = False) -> list[SilenceOut]:
    """Silences, newest first (only those in force with ``?active=true``)."""
    now = time.time()
    return [_silence_out(s, now) for s in store.list_silences(active_at=now if active else None)]


@router.post("/v1/silences", response_model=SilenceOut, status_code=201, openapi_extra=openapi_body(SilenceIn))
def create_silence(
    who: Operator, body: Annotated[SilenceIn, Depends(json_body(SilenceIn))], store: StoreDep
) -> SilenceOut:
    """Silence matching alerts until ``ends_at`` (or for ``duration``)."""
    now = time.time()
    starts = epoch(body.starts_at) if body.starts_at else now
    ends = _silence_end(body, starts)
    if ends <= now:
        raise ValidationFailed("ends_at", "expected a time in the future")
    silence = store.add_silence(
        dict(body.matchers), starts_at=starts, ends_at=ends, created_by=who.name, comment=body.comment
    )
    return _silence_out(silence, now)


def _silence_end(body: SilenceIn, starts: float) -> float:
    if (body.ends_at is None) == (body.duration is None):
        raise ValidationFailed("ends_at", "give exactly one of ends_at (a time) or duration (such as '2h')")
    if body.duration is not None:
        return starts + parse_positive_duration(body.duration)
    assert body.ends_at is not None
    return epoch(body.ends_at)


@router.delete("/v1/silences/{silence_id}", response_model=SilenceOut)
def end_silence(silence_id: ObjectId, store: StoreDep, who: Operator) -> SilenceOut:
    """End a silence now."""
    now = time.time()
    return _silence_out(store.end_silence(silence_id, who.name, now), now)


@router.get("/v1/alert-rules", response_model=list[RuleOut])
def list_rules(store: RulesStore, _: Operator) -> list[RuleOut]:
    """Every alert rule, from the config file and from the API."""
    return [_rule_out(r) for r in store.list_alert_rules()]


@router.get("/v1/alert-rules/{name}", response_model=RuleOut)
def get_rule(name: RuleName, store: RulesStore, _: Operator) -> RuleOut:
    """One alert rule."""
    return _rule_out(store.get_alert_rule(name))


@router.put(
    "/v1/alert-rules/{name}",
    response_model=RuleOut,
    openapi_extra=openapi_object_body("the fields of a rule in mlwatch.yaml (`alerts:`), and optionally `enabled`"),
)
def put_rule(
    who: Operator,
    name: RuleName,
    body: Annotated[dict[str, Any], Depends(decoded_body(object_body))],
    store: RulesStore,
) -> RuleOut:
    """Create or replace an API rule (the body has the fields of a rule in mlwatch.yaml; ``enabled`` optional)."""
    fields = dict(body)
    enabled = fields.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationFailed("enabled", f"expected true or false, got {enabled!r}")
    if fields.setdefault("name", name) != name:
        raise ValidationFailed("name", f"expected the name in the path ({name!r}), got {fields['name']!r}")
    try:
        rule = AlertRuleConfig.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError([_located(e) for e in exc.errors()]) from exc
    try:
        check_rule(rule)
    except ValueError as exc:
        raise RequestValidationError([_located({"type": "value_error", "loc": (), "msg": str(exc)})]) from exc
    return _rule_out(
        store.put_alert_rule(name, rule.model_dump(mode="json", by_alias=True), actor=who.name, enabled=enabled)
    )


def _located(error: Any) -> dict[str, Any]:
    """A rule error with its field: checks across fields say ``field: message``; lift the field into loc."""
    loc = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    field, sep, rest = message.partition(": ")
    if not loc and sep and field.replace(".", "").replace("_", "").isalnum():
        loc, message = tuple(field.split(".")), rest
    return {**error, "loc": ("body", *loc), "msg": message}


@router.delete("/v1/alert-rules/{name}", status_code=204)
def delete_rule(name: RuleName, store: RulesStore, who: Operator) -> None:
    """Delete an API rule; its active alerts resolve at the next evaluation."""
    store.delete_alert_rule(name, actor=who.name)


@router.get("/v1/webhooks/deliveries", response_model=list[Delivery])
def list_deliveries(
    store: StoreDep,
    _: Viewer,
    receiver: QueryText = None,
    status: Literal["pending", "delivered", "failed"] | None = None,
    event_id: QueryText = None,
    limit: Limit = 100,
) -> list[Delivery]:
    """The delivery log, newest first, per event and receiver: attempt count, last status code, latency and error,
    and ``attempt_log``, its newest attempts (number, started_at, status_code, latency_ms, error), oldest first."""
    return store.list_deliveries(receiver=receiver, status=status, event_id=event_id, limit=limit)


@router.get("/v1/webhooks/deliveries/{delivery_id}", response_model=Delivery)
def get_delivery(delivery_id: ObjectId, store: StoreDep, _: Viewer) -> Delivery:
    """One delivery with every attempt in ``attempt_log``, oldest first."""
    return store.get_delivery(delivery_id)


@router.get("/v1/webhooks/schema")
def event_schema(_: Viewer) -> dict[str, Any]:
    """The JSON Schema of the generic JSON body (``mlwatch.event/v1``)."""
    from monitor.webhooks.schema import EVENT_SCHEMA

    return EVENT_SCHEMA


@router.post(
    "/v1/webhooks/test",
    response_model=TestEventOut,
    status_code=202,
    openapi_extra=openapi_body(TestEventIn, required=False),
)
def send_test(
    who: Admin,
    body: Annotated[TestEventIn | None, Depends(optional_json_body(TestEventIn))],
    store: StoreDep,
    settings: SettingsDep,
) -> TestEventOut:
    """Queue a ``test`` event for one receiver or all; the worker delivers it like any other."""
    event, receivers = send_test_event(store, settings, (body or TestEventIn()).receiver, who.name)
    return TestEventOut(event_id=event.id, receivers=receivers)
