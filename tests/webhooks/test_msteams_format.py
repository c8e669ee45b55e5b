"""Teams bodies: an Adaptive Card 1.4 message whose user text cannot format, link or expand, at a real receiver."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from monitor.config import Settings, WebhookConfig
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import Event, emit
from monitor.webhooks.formats import render
from monitor.webhooks.msteams import FACT_VALUE, teams_text
from tests.webhooks.receiver import Receiver

HOSTILE = "[click](https://evil.example) **bold** {{DATE(2017-02-14T06:08:39Z, SHORT)}}\n- item <b>"
DASHBOARD = "https://mlwatch.example.com"
_UNESCAPED = re.compile(r"(?<!\\)[\[\]()*_{}<>`~#]")
_ELEMENTS = {"TextBlock": {"text"}, "FactSet": {"facts"}}


class CardError(AssertionError):
    """A message Teams' Workflows webhook would refuse, or user text it would format."""


def check_message(message: dict[str, Any], links: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Raise CardError where ``message`` is not a Workflows message with one Adaptive Card 1.4+."""
    _expect(message.get("type") == "message", "type: message")
    (attachment,) = message.get("attachments") or [None]
    _expect(isinstance(attachment, dict), "attachments: one card")
    _expect(attachment["contentType"] == "application/vnd.microsoft.card.adaptive", "attachments[0].contentType")
    card = attachment["content"]
    _expect(card.get("type") == "AdaptiveCard", "content.type: AdaptiveCard")
    major, minor = (int(p) for p in str(card.get("version", "0.0")).split("."))
    _expect((major, minor) >= (1, 4), "content.version: 1.4 or later")
    _expect(isinstance(card.get("body"), list) and card["body"], "content.body: elements")
    for element in card["body"]:
        _expect(_ELEMENTS.get(element.get("type"), {"?"}) <= set(element), f"body element {element.get('type')}")
        texts = [element["text"]] if element["type"] == "TextBlock" else _facts(element["facts"])
        for text in texts:
            _expect(isinstance(text, str) and not _UNESCAPED.search(text) and "\n" not in text, f"unescaped {text!r}")
    for action in card.get("actions", []):
        _expect(action.get("type") == "Action.OpenUrl" and isinstance(action.get("title"), str), "actions[]")
        _expect(action.get("url") in links, f"unexpected link {action.get('url')!r}")


def _facts(facts: list[dict[str, Any]]) -> list[str]:
    _expect(all(set(f) == {"title", "value"} for f in facts), "facts[]: title and value")
    return [t for f in facts for t in (f["title"], f["value"])]


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise CardError(what)


def _alert(summary: str, **labels: str) -> Event:
    data = {"rule": "credit-drift", "service": "credit", "summary": summary}
    return Event("evt_1", "alert.firing", 1_700_000_000.0, "critical", {"service": "credit", **labels}, data)


def _card(event: Event, dashboard_url: str | None = DASHBOARD) -> dict[str, Any]:
    return dict(json.loads(render("msteams", event, Settings(dashboard_url=dashboard_url))))


def test_checker_refuses_a_markdown_link_left_unescaped() -> None:
    body = {"type": "TextBlock", "text": "[x](https://evil.example)"}
    message = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
               "content": {"type": "AdaptiveCard", "version": "1.4", "body": [body]}}]}  # fmt: skip
    with pytest.raises(CardError, match=r"unescaped '\[x\]"):
        check_message(message)


def test_user_text_is_escaped_and_shown_as_typed() -> None:
    message = _card(_alert(HOSTILE, **{"team*": HOSTILE}))
    check_message(message, links={f"{DASHBOARD}/alerts?service=credit"})
    title = message["attachments"][0]["content"]["body"][0]["text"]
    assert re.sub(r"\\(.)", r"\1", title) == "[FIRING] credit-drift: " + HOSTILE.replace("\n", " ")
    assert "{{DATE(" not in title and "\\{\\{DATE" in title


def test_long_values_are_cut_and_labels_bounded() -> None:
    message = _card(_alert("x" * 5000, big="y" * 5000, **{f"k{i:02d}": "v" for i in range(40)}))
    check_message(message, links={f"{DASHBOARD}/alerts?service=credit"})
    body = message["attachments"][0]["content"]["body"]
    shown = re.sub(r"\\(.)", r"\1", body[0]["text"])  # the cut is made before escaping
    assert len(shown) <= 300 and shown.endswith("\u2026")
    facts = body[1]["facts"]
    assert len(facts) == 20 and len(facts[0]["value"]) <= FACT_VALUE


def test_without_a_dashboard_url_there_is_no_action() -> None:
    message = _card(_alert("drift"), dashboard_url=None)
    check_message(message)
    assert "actions" not in message["attachments"][0]["content"]


def test_teams_text_escapes_every_commonmark_mark() -> None:
    assert teams_text("a_b*c [d](e) #1 <x> `y` ~z", 100) == r"a\_b\*c \[d\]\(e\) \#1 \<x\> \`y\` \~z"


def test_a_hostile_alert_reaches_a_real_receiver_as_a_valid_card(sqlite_url: str, receiver: Receiver) -> None:
    receiver.secret = None
    hook = WebhookConfig(name="teams", url=receiver.url, format="msteams")
    settings = Settings(webhooks=(hook,), dashboard_url=DASHBOARD)
    store = Store.open(sqlite_url, migrate=True)
    try:
        data = {"rule": "r", "service": "credit", "summary": HOSTILE}
        emit(store, settings, "alert.firing", data, severity="critical", labels={"service": "credit", "note": HOSTILE})
        Deliverer(store, settings, http=httpx.Client()).drain()
    finally:
        store.close()
    (received,) = receiver.received
    assert received.headers["content-type"] == "application/json"
    check_message(received.json(), links={f"{DASHBOARD}/alerts?service=credit"})
