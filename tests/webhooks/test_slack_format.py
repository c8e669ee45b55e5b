"""Slack bodies: user text escaped, texts cut to Block Kit's limits, a dashboard link only when configured."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest

from monitor.config import Settings, WebhookConfig
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import Event, emit
from monitor.webhooks.formats import render
from tests.webhooks.receiver import SECRET, Clock, Receiver
from tests.webhooks.slack_blocks import SlackPayloadError, check_payload

HOSTILE = "<!channel> income > 5 & region <https://evil.example|click> <@U024BE7LH>"
DASHBOARD = "https://mlwatch.example.com"


def _alert(summary: str, **labels: str) -> Event:
    data = {"rule": "credit-drift", "service": "credit", "summary": summary}
    return Event("evt_1", "alert.firing", 1_700_000_000.0, "warning", {"service": "credit", **labels}, data)


def _slack(event: Event, dashboard_url: str | None = DASHBOARD) -> dict[str, Any]:
    return dict(json.loads(render("slack", event, Settings(dashboard_url=dashboard_url))))


def _texts(body: dict[str, Any]) -> list[str]:
    section, labels = body["blocks"][0], body["blocks"][1]
    return [body["text"], section["text"]["text"], *(f["text"] for f in labels["fields"])]


def test_checker_refuses_a_mention_left_unescaped() -> None:
    with pytest.raises(SlackPayloadError, match=r"blocks\[0\]\.text\.text: unescaped control characters '<!channel>'"):
        check_payload({"text": "hi", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<!channel>"}}]})


def test_user_text_cannot_form_links_or_mentions() -> None:
    event = _alert(HOSTILE, team="<!here>", **{"a&b": "<#C123>"})
    body = _slack(event)
    check_payload(body, links={f"{DASHBOARD}/alerts?service=credit"})
    texts = _texts(body)
    assert texts[1] == f":warning: [FIRING] credit-drift: {html.escape(HOSTILE, quote=False)}"
    assert html.unescape(texts[1]).endswith(HOSTILE)  # shown exactly as it was typed
    assert "*a&amp;b*: &lt;#C123&gt;" in texts and "*team*: &lt;!here&gt;" in texts
    assert all(block.get("text", {}).get("verbatim", True) for block in body["blocks"][:1])


def test_long_summaries_are_cut_at_slacks_section_limit_with_an_ellipsis() -> None:
    body = _slack(_alert("drift " * 2000, aa="x" * 5000, **{f"k{i:02d}": "v" for i in range(30)}))
    check_payload(body, links={f"{DASHBOARD}/alerts?service=credit"})
    section = body["blocks"][0]["text"]["text"]
    assert 2960 < len(section) <= 3000 and section.endswith(" drift\u2026")  # at a word, within the limit
    fields = body["blocks"][1]["fields"]
    assert len(fields) == 10 and len(fields[0]["text"]) <= 2000 and fields[0]["text"].endswith("x\u2026")
    assert len(body["text"]) <= 3000 + len(f" <{DASHBOARD}/alerts?service=credit|dashboard>")


def test_a_cut_never_splits_an_escaped_character() -> None:
    for pad in range(5):
        section = _slack(_alert("x" * pad + "&" * 1000))["blocks"][0]["text"]["text"]
        check_payload({"text": "t", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": section}}]})
        assert section.endswith("&amp;\u2026") and len(section) <= 3000


def test_without_a_dashboard_url_there_is_no_link_at_all() -> None:
    body = _slack(_alert("drift"), dashboard_url=None)
    check_payload(body)
    assert [b["type"] for b in body["blocks"]] == ["section", "section"]
    assert "http" not in json.dumps(body)  # neither a button nor a loopback link in the text


def test_a_hostile_alert_reaches_a_real_receiver_as_a_valid_slack_body(sqlite_url: str, receiver: Receiver) -> None:
    hook = WebhookConfig(name="chat", url=receiver.url, format="slack", secret_env="HOOK_SECRET")
    settings = Settings(webhooks=(hook,))
    store = Store.open(sqlite_url)
    emit(store, settings, "retrain.failed", {"service": HOSTILE}, severity="critical", labels={"service": HOSTILE})
    Deliverer(store, settings, clock=Clock(), environ={"HOOK_SECRET": SECRET}).drain()
    (got,) = receiver.received
    assert got.signature_ok
    check_payload(got.json())
    store.close()
