"""Aliases moved outside mlwatch (MLflow's UI or API): recorded, announced, and rollback still works."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator

from monitor.config import Settings, WebhookConfig
from monitor.records import Service
from monitor.webhooks.schema import EVENT_SCHEMA
from retrain import actions
from retrain.registry import Registry
from retrain.tasks import AliasWatcher

Versioned = Callable[[int], tuple[Registry, Service]]
EVENT = "model.alias_changed_externally"
SETTINGS = Settings(webhooks=(WebhookConfig(name="models", url="http://127.0.0.1:9/hook", events=(EVENT,)),))


def _watch(registry: Registry) -> None:
    AliasWatcher(registry.store, SETTINGS, registry).tick(time.time())


def _events(registry: Registry) -> list[dict[str, Any]]:
    """The bodies queued for the receiver subscribed to outside alias changes, oldest first."""
    deliveries = reversed(registry.store.list_deliveries(receiver="models"))
    return [json.loads(d.payload) for d in deliveries]


def test_a_champion_moved_in_mlflow_is_announced_keeps_previous_and_can_be_rolled_back(versioned: Versioned) -> None:
    registry, service = versioned(2)
    model = str(service.model_name)
    registry.promote(service, "1", actor="alice", reason="first")
    registry.client.set_registered_model_alias(model, "champion", "2")
    _watch(registry)
    (event,) = _events(registry)
    Draft202012Validator(EVENT_SCHEMA).validate(event)
    assert (event["type"], event["severity"]) == (EVENT, "warning")
    assert {k: event["data"][k] for k in ("alias", "from", "to", "champion", "previous", "source")} == {
        "alias": "champion",
        "from": "1",
        "to": "2",
        "champion": "2",
        "previous": "1",
        "source": "external",
    }
    assert registry.aliases(model) == {"champion": "2", "previous": "1"}
    moves = [(h.action, h.alias, h.from_version, h.to_version) for h in registry.history("credit")]
    assert moves[:2] == [("alias.external_change", "champion", "1", "2"), ("alias.set", "previous", None, "1")]
    done = actions.rollback(registry.store, SETTINGS, "credit", actor="bob", registry=registry)
    assert (done.champion, done.previous) == ("1", "2")


def test_an_outside_change_is_announced_once(versioned: Versioned) -> None:
    registry, service = versioned(2)
    registry.promote(service, "1", actor="alice", reason="first")
    registry.client.set_registered_model_alias(str(service.model_name), "champion", "2")
    _watch(registry)
    _watch(registry)
    assert len(_events(registry)) == 1


def test_a_previous_chosen_in_mlflow_is_left_as_the_operator_set_it(versioned: Versioned) -> None:
    registry, service = versioned(4)
    model = str(service.model_name)
    registry.promote(service, "1", actor="a", reason="r")
    registry.promote(service, "2", actor="a", reason="r")
    registry.client.set_registered_model_alias(model, "champion", "4")
    registry.client.set_registered_model_alias(model, "previous", "3")
    _watch(registry)
    assert registry.aliases(model) == {"champion": "4", "previous": "3"}
    changed = sorted((e["data"]["alias"], e["data"]["from"], e["data"]["to"]) for e in _events(registry))
    assert changed == [("champion", "2", "4"), ("previous", "1", "3")]


def test_the_event_type_is_in_the_published_schema() -> None:
    assert EVENT in EVENT_SCHEMA["properties"]["type"]["examples"]
