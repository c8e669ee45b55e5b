"""Body formats, keyed by the ``format`` a receiver is configured with.

``json`` is mlwatch's own documented, versioned envelope (``schema: mlwatch.event/v1``)::

    {
      "schema": "mlwatch.event/v1",
      "id": "evt_5c0e...",                  # also the webhook-id header; same on retries
      "type": "alert.firing",               # see monitor.vocabulary.EVENT_TYPES
      "timestamp": "2026-11-26T10:00:00Z",  # when it happened (UTC, RFC 3339)
      "severity": "warning",                # info, warning, critical
      "labels": {"service": "credit"},
      "dashboard_url": "http://127.0.0.1:8501/alerts?service=credit",
      "data": {...}                          # per type; alert events carry the alert
    }

Fields are only ever added within v1; a breaking change gets ``mlwatch.event/v2``.
``slack`` is the incoming-webhook form: ``text`` plus ``blocks``, escaped and cut to Slack's limits,
with a link button when ``dashboard_url`` is configured.

A grouped notification (a receiver with ``group_by``, see ``monitor.alerts.grouping``) is an
``alert.firing`` or ``alert.resolved`` event whose ``data`` is ``{"alerts": [<alert>, ...],
"group": {"key": "<64 hex>", "labels": {"service": "credit"}}, "repeat_interval": 14400}``,
each ``<alert>`` the ``data`` an ungrouped alert event carries (``state`` as the group last
heard: ``firing`` or ``resolved``); its ``labels`` are the group's. In ``json`` these are
fields added to v1. Every format lists the group's alerts (``presentation.alerts_of``). The others have a module each:
``alertmanager`` (Prometheus Alertmanager's ``POST /api/v2/alerts``), ``pagerduty`` (Events
API v2), ``msteams`` (an Adaptive Card for Teams' Workflows webhooks) and ``email`` (``mail.py``:
subject, text and HTML, sent over SMTP rather than posted).

Every renderer is a pure function of the event and the settings; the body it returns is
stored in the outbox and posted as it is (PagerDuty's routing key excepted, see
``finished_body``), retries included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from monitor.store.codec import dumps
from monitor.webhooks.alertmanager import render_alertmanager
from monitor.webhooks.mail import render_email
from monitor.webhooks.msteams import render_msteams
from monitor.webhooks.pagerduty import render_pagerduty, with_routing_key
from monitor.webhooks.presentation import alert_line, alerts_of, dashboard_link, group_of, headline, rfc3339

if TYPE_CHECKING:
    from monitor.config import Settings, WebhookConfig
    from monitor.webhooks.events import Event

SCHEMA = "mlwatch.event/v1"
_ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
UNSET_DASHBOARD = "http://127.0.0.1:8501"
"""What ``dashboard_url`` says in a JSON body when none is configured: v1 requires the field."""

# Slack's documented Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
SLACK_SECTION_TEXT = 3000
SLACK_FIELD_TEXT = 2000
SLACK_FIELDS = 10
SLACK_BUTTON_URL = 3000
SLACK_LINE_TEXT = 200  # one alert of a group's list: 3,000 characters show at least 14 of them
_ELLIPSIS = "\u2026"
_WORD_CUT = 40  # a word longer than this is cut inside; a shorter one is dropped whole
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def envelope(event: Event, settings: Settings) -> dict[str, Any]:
    """The ``mlwatch.event/v1`` document of ``event``."""
    return {
        "schema": SCHEMA,
        "id": event.id,
        "type": event.type,
        "timestamp": rfc3339(event.occurred_at),
        "severity": event.severity,
        "labels": event.labels,
        "dashboard_url": dashboard_link(settings, event) or UNSET_DASHBOARD,
        "data": event.data,
    }


def render_json(event: Event, settings: Settings) -> str:
    """The generic JSON body."""
    return dumps(envelope(event, settings))


def slack_escape(text: object) -> str:
    """``text`` with Slack's control characters ``& < >`` as entities, so it cannot form links or mentions."""
    return str(text).translate(_ESCAPES)


def slack_cut(text: str, limit: int) -> str:
    """Escaped ``text`` cut to ``limit`` characters and an ellipsis: at a near space, never inside an entity."""
    if len(text) <= limit:
        return text
    kept = text[: limit - 1]
    space = kept.rfind(" ", len(kept) - _WORD_CUT)
    if space > 0:
        kept = kept[:space].rstrip()
    amp = kept.rfind("&", max(0, len(kept) - 4))
    if amp != -1 and ";" not in kept[amp:]:
        kept = kept[:amp]
    return kept + _ELLIPSIS


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    # verbatim: Slack then neither links bare URLs or channel names nor parses @here-style words
    return {"type": "mrkdwn", "text": slack_cut(text, limit), "verbatim": True}


def render_slack(event: Event, settings: Settings) -> str:
    """A Slack incoming-webhook body: fallback ``text``, a section, the labels, and a dashboard button when configured.

    Every string from the event is escaped and every text is cut to Slack's limits, so a
    feature value or service name shows as typed and the message is never refused.
    """
    text = f"{_ICONS.get(event.severity, '')} {slack_escape(headline(event))}".strip()
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _mrkdwn(text, SLACK_SECTION_TEXT)}]
    if group_of(event) is not None:
        blocks.append({"type": "section", "text": _mrkdwn(slack_list(alerts_of(event)), SLACK_SECTION_TEXT)})
    labels = sorted(event.labels.items())[:SLACK_FIELDS]
    fields = [_mrkdwn(f"*{slack_escape(k)}*: {slack_escape(v)}", SLACK_FIELD_TEXT) for k, v in labels]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    link = dashboard_link(settings, event)
    fallback = slack_cut(text, SLACK_SECTION_TEXT)
    if link is not None and len(link) <= SLACK_BUTTON_URL:
        button = {"type": "button", "text": {"type": "plain_text", "text": "Open dashboard"}, "url": link}
        blocks.append({"type": "actions", "elements": [button]})
        fallback += f" <{link}|dashboard>"
    return dumps({"text": fallback, "blocks": blocks})


def slack_list(alerts: list[dict[str, Any]]) -> str:
    """The alerts of a group, one escaped line each, as many as fit in a section, then how many more."""
    lines: list[str] = []
    used = 0
    for i, alert in enumerate(alerts):
        line = "\u2022 " + slack_cut(slack_escape(alert_line(alert)), SLACK_LINE_TEXT)
        rest = len(alerts) - i - 1
        if used + len(line) + len(_more(rest + 1)) + 2 > SLACK_SECTION_TEXT:
            lines.append(_more(len(alerts) - i))
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def _more(count: int) -> str:
    return f"\u2026 and {count} more"


FORMATS: dict[str, Callable[[Event, Settings], str]] = {
    "json": render_json,
    "slack": render_slack,
    "alertmanager": render_alertmanager,
    "pagerduty": render_pagerduty,
    "msteams": render_msteams,
    "email": render_email,
}
"""Body renderers by format name (the value of a receiver's ``format``)."""


def render(format_name: str, event: Event, settings: Settings) -> str:
    """The body of ``event`` for a receiver using ``format_name``."""
    try:
        renderer = FORMATS[format_name]
    except KeyError:
        raise ValueError(f"unknown webhook format {format_name!r}; expected one of {', '.join(FORMATS)}") from None
    return renderer(event, settings)


def finished_body(receiver: WebhookConfig, payload: str, environ: Mapping[str, str]) -> str:
    """The stored body as posted: a ``pagerduty`` body gets its routing key from ``routing_key_env``.

    ValueError when that variable is unset (the delivery is then retried, so setting it is enough).
    """
    if receiver.format != "pagerduty" or not receiver.routing_key_env:
        return payload
    key = environ.get(receiver.routing_key_env)
    if not key:
        raise ValueError(f"environment variable {receiver.routing_key_env} (the PagerDuty routing key) is not set")
    return with_routing_key(payload, key)
