"""The alerts page: open alerts, and what its buttons do to the store."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from monitor.store import Store

Open = Callable[..., AppTest]
PAGE = "pages/alerts.py"


def button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def test_alerts_page_lists_the_firing_alert(open_app: Open) -> None:
    at = open_app(page=PAGE)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["rule"]) == ["fraud-latency"]
    assert table.iloc[0]["state"] == "firing"


def test_acknowledge_records_the_operator(open_app: Open, dashboard_env: str) -> None:
    at = open_app(page=PAGE)
    at.text_input(key="ack_comment").input("looking into it")
    button(at, "Acknowledge").click().run()
    assert not at.exception
    store = Store.open(dashboard_env)
    alert = store.list_alerts(state="firing")[0]
    assert alert.acked_by == "operator-user"
    entry = store.audit_entries(action="alert.ack")[0]
    assert (entry.actor, entry.details["comment"]) == ("operator-user", "looking into it")
    assert "acknowledged by operator-user" in at.success[0].value


def test_silence_matches_rule_and_service_until_the_end_time(open_app: Open, dashboard_env: str) -> None:
    at = open_app(page=PAGE)
    button(at, "Silence").click().run()
    assert not at.exception
    store = Store.open(dashboard_env)
    [silence] = store.list_silences()
    assert silence.matchers == {"rule": "fraud-latency", "service": "fraud"}
    assert silence.created_by == "operator-user"
    assert 3600 < silence.ends_at - silence.starts_at <= 7200 + 60


def test_viewer_sees_alerts_but_no_action_buttons(open_app: Open) -> None:
    at = open_app(role="viewer", page=PAGE)
    assert not at.exception
    assert list(at.dataframe[0].value["rule"]) == ["fraud-latency"]
    labels = {b.label for b in at.button}
    assert not labels & {"Acknowledge", "Silence", "End silence now", "Send test event"}


def test_admin_sends_a_test_event_to_one_receiver(open_app: Open, dashboard_env: str) -> None:
    at = open_app(role="admin", page=PAGE)
    at.selectbox(key="webhook_choice").select("ops").run()
    button(at, "Send test event").click().run()
    assert not at.exception
    [delivery] = Store.open(dashboard_env).list_deliveries(receiver="ops")
    assert (delivery.event_type, delivery.status) == ("test", "pending")
    assert "queued for ops" in at.success[0].value
