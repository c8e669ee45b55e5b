"""The ``msteams`` format: an Adaptive Card message, as Teams' Workflows incoming webhooks take it.

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
                      "content": {"type": "AdaptiveCard", "version": "1.4", "body": [
                          {"type": "TextBlock", "text": "[FIRING] credit-drift: ...", ...},
                          {"type": "FactSet", "facts": [{"title": "service", "value": "credit"}]}],
                        "actions": [{"type": "Action.OpenUrl", "title": "Open dashboard", "url": "..."}]}}]}

Teams renders a subset of CommonMark in ``TextBlock.text``, ``Fact.title`` and ``Fact.value``
(bold, italic, lists, links) and expands ``{{DATE(...)}}``/``{{TIME(...)}}``. Every string
from an event is therefore cut to a bound (before escaping, so no escape is ever split), has
its line breaks folded to spaces (no list can start), and has CommonMark's punctuation
backslash-escaped, so a feature value such as ``[click](https://evil.example)`` shows as
typed. The Action.OpenUrl appears only when ``dashboard_url`` is configured. A grouped
notification lists its alerts, a TextBlock each (at most ``ALERT_LINES``, then a count).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from monitor.store.codec import dumps
from monitor.webhooks.presentation import alert_line, alerts_of, cut, dashboard_link, group_of, headline

if TYPE_CHECKING:
    from monitor.config import Settings
    from monitor.webhooks.events import Event

CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
TITLE_TEXT = 300
FACT_TITLE = 100
FACT_VALUE = 500
FACTS = 20
ALERT_LINES = 20
"""The alerts of a group listed one per TextBlock; more are counted ("and 20 more")."""
ALERT_TEXT = 300
# Teams refuses messages over about 28 KB; these bounds keep a card far below that.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")
_BREAKS = re.compile(r"[\r\n\t\u2028\u2029]+")
_COLORS = {"critical": "Attention", "warning": "Warning", "info": "Default"}


def teams_text(value: object, limit: int) -> str:
    """``value`` as text Teams shows literally: cut to ``limit``, on one line, CommonMark punctuation escaped."""
    return _MARKDOWN.sub(r"\\\1", _BREAKS.sub(" ", cut(str(value), limit)))


def render_msteams(event: Event, settings: Settings) -> str:
    """The Workflows webhook body of ``event``: one Adaptive Card with a title, its labels and a dashboard action."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": teams_text(headline(event), TITLE_TEXT),
            "weight": "Bolder",
            "size": "Medium",
            "color": _COLORS.get(event.severity, "Default"),
            "wrap": True,
        }
    ]
    if group_of(event) is not None:
        body += _alert_blocks(alerts_of(event))
    facts = [
        {"title": teams_text(k, FACT_TITLE), "value": teams_text(v, FACT_VALUE)}
        for k, v in sorted(event.labels.items())[:FACTS]
    ]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    card: dict[str, Any] = {"type": "AdaptiveCard", "version": CARD_VERSION, "body": body}
    card["$schema"] = "http://adaptivecards.io/schemas/adaptive-card.json"
    link = dashboard_link(settings, event)
    if link is not None:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open dashboard", "url": link}]
    attachment = {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}
    return dumps({"type": "message", "attachments": [attachment]})


def _alert_blocks(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A group's alerts, one line each, at most ``ALERT_LINES``, then how many more."""
    lines = [teams_text(alert_line(a), ALERT_TEXT) for a in alerts[:ALERT_LINES]]
    if len(alerts) > ALERT_LINES:
        lines.append(teams_text(f"\u2026 and {len(alerts) - ALERT_LINES} more", ALERT_TEXT))
    return [{"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in lines]
