"""The ``email`` format: a subject, a plain-text and an HTML body that state the same facts.

    {"subject": "[mlwatch] [FIRING] dataset-drift: credit: 40% of features drifted ...",
     "text": "...", "html": "<!DOCTYPE html>..."}

That JSON is what the outbox stores (and the delivery log shows); the addresses come from the
receiver's ``email`` settings when the message is sent (``message_of``), which also sets
``Message-ID`` from the event id, so a retried message is recognisably the same one.

Both bodies are written from one list of sections: one per alert of the event (a group's
alerts, or the one alert, see ``presentation.alerts_of``), then the event itself. The text
lists each field as ``name: value``; the HTML puts the same pairs in tables, every value
escaped, so a feature or service name shows as typed and never becomes markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from monitor.store.codec import dumps, loads
from monitor.webhooks.presentation import alerts_of, cut, dashboard_link, headline, rfc3339

if TYPE_CHECKING:
    from monitor.config import EmailConfig, Settings
    from monitor.store.outbox import Delivery
    from monitor.webhooks.events import Event

SUBJECT_LIMIT = 200
VALUE_LIMIT = 500
MAX_SECTIONS = 100
"""Alerts listed in one message; a larger group ends with a line saying how many more it has."""
ALERT_FIELDS = (
    "rule",
    "state",
    "severity",
    "service",
    "kind",
    "value",
    "threshold",
    "started_at",
    "fired_at",
    "resolved_at",
    "acked_by",
    "labels",
    "fingerprint",
)
"""What a section shows of an alert, in this order (absent and empty fields are left out)."""


@dataclass(frozen=True, slots=True)
class Section:
    """One block of both bodies: a title and its ``(name, value)`` facts."""

    title: str
    fields: tuple[tuple[str, str], ...]


def render_email(event: Event, settings: Settings) -> str:
    """The stored body of an ``email`` receiver: subject, text and HTML, as JSON."""
    blocks = sections(event, settings)
    title = subject(event)
    return dumps({"subject": title, "text": text_body(title, blocks), "html": html_body(title, blocks)})


def subject(event: Event) -> str:
    """One line: a group's state, size and labels, or the alert's headline; prefixed ``[mlwatch]``."""
    if isinstance(event.data.get("alerts"), list):
        group = event.data.get("group") or {}
        labels = ", ".join(f"{k}={v}" for k, v in sorted((group.get("labels") or {}).items()))
        state = event.type.removeprefix("alert.").upper()
        line = f"[{state}] {len(alerts_of(event))} alerts" + (f": {labels}" if labels else "")
    else:
        line = headline(event)
    return cut(" ".join(f"[mlwatch] {line}".split()), SUBJECT_LIMIT)  # no line break may reach a header


def sections(event: Event, settings: Settings) -> list[Section]:
    """Every alert of ``event`` (at most ``MAX_SECTIONS``), then the event's own facts."""
    alerts = alerts_of(event)
    blocks = [_alert_section(event, alert) for alert in alerts[:MAX_SECTIONS]]
    if len(alerts) > MAX_SECTIONS:
        blocks.append(Section(f"and {len(alerts) - MAX_SECTIONS} more alerts", ()))
    facts = [("type", event.type), ("id", event.id), ("time", rfc3339(event.occurred_at))]
    link = dashboard_link(settings, event)
    if link is not None:
        facts.append(("dashboard", link))
    return [*blocks, Section("Event", tuple(facts))]


def _alert_section(event: Event, item: dict[str, Any]) -> Section:
    keys = ALERT_FIELDS if "rule" in item else sorted(k for k in item if k != "summary")
    fields = tuple((key, _shown(key, item[key])) for key in keys if item.get(key) not in (None, "", {}, []))
    title = str(item.get("summary") or headline(event))
    return Section(" ".join(title.split()), fields)


def _shown(key: str, value: Any) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    elif isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value)
    elif key.endswith("_at") and isinstance(value, int | float) and not isinstance(value, bool):
        text = rfc3339(value)
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return cut(" ".join(text.split()), VALUE_LIMIT)


def text_body(title: str, blocks: list[Section]) -> str:
    """The plain-text part: the subject, then each section's title and ``name: value`` lines."""
    lines = [title, ""]
    for block in blocks:
        lines.append(block.title)
        lines.extend(f"  {name}: {value}" for name, value in block.fields)
        lines.append("")
    return "\n".join(lines)


def html_body(title: str, blocks: list[Section]) -> str:
    """The HTML part: the same sections as tables, every string escaped."""
    out = [f'<!DOCTYPE html>\n<html><body style="font-family:sans-serif">\n<h2>{_esc(title)}</h2>']
    for block in blocks:
        out.append(f"<h3>{_esc(block.title)}</h3>")
        rows = "".join(f"<tr><th>{_esc(name)}</th><td>{_cell(name, value)}</td></tr>" for name, value in block.fields)
        if rows:
            out.append(f'<table cellpadding="4" style="border-collapse:collapse">{rows}</table>')
    out.append("</body></html>\n")
    return "\n".join(out)


def _cell(name: str, value: str) -> str:
    if name == "dashboard":
        return f'<a href="{_esc(value)}">{_esc(value)}</a>'
    return _esc(value)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def message_of(email: EmailConfig, delivery: Delivery) -> EmailMessage:
    """The message as sent: the stored subject and bodies, the receiver's addresses, ids from the event."""
    stored = loads(delivery.payload)
    message = EmailMessage()
    message["Subject"] = stored["subject"]
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    message["Date"] = formatdate(delivery.created_at, usegmt=True)
    message["Message-ID"] = f"<{delivery.event_id}@mlwatch>"
    message.set_content(stored["text"])
    message.add_alternative(stored["html"], subtype="html")
    return message
