"""The dashboard's buttons run the same use cases as the API: one function each, audited as the viewer."""

from __future__ import annotations

import pytest

from dashboard import actions
from dashboard.access import Viewer
from monitor.config import Settings, WebhookConfig
from monitor.errors import AuthError, Conflict, NotFound
from monitor.store import Store

SETTINGS = Settings(
    webhooks=(
        WebhookConfig(name="ops", url="http://127.0.0.1:9/hook"),
        WebhookConfig(name="pager", url="http://127.0.0.1:9/page"),
    )
)


def test_an_admins_test_event_goes_to_the_one_receiver_asked_for_and_is_audited(store: Store) -> None:
    event_id = actions.send_test_event(store, SETTINGS, Viewer("ada", "admin"), "pager")
    deliveries = store.list_deliveries(event_id=event_id)
    assert [d.receiver for d in deliveries] == ["pager"]
    entry = next(e for e in store.audit_entries() if e.action == "webhook.test")
    assert (entry.actor, entry.target, entry.details) == ("ada", event_id, {"receivers": ["pager"]})


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_send_test_events(store: Store, role: str) -> None:
    with pytest.raises(AuthError, match="only admins"):
        actions.send_test_event(store, SETTINGS, Viewer("olga", role), "ops")
    assert store.list_deliveries() == []


def test_an_unknown_receiver_or_none_configured_is_refused_by_name(store: Store) -> None:
    with pytest.raises(NotFound, match=r"'nope'.*ops, pager"):
        actions.send_test_event(store, SETTINGS, Viewer("ada", "admin"), "nope")
    with pytest.raises(Conflict, match="no webhook receivers"):
        actions.send_test_event(store, Settings(), Viewer("ada", "admin"), "ops")
