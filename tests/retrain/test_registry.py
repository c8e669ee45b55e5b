"""The registry adapter: champion/previous aliases, serialized promotion, audited history."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest

from monitor.config import Settings, WebhookConfig
from monitor.errors import Conflict, NotFound, ValidationFailed
from monitor.records import Service
from retrain import actions
from retrain.errors import RegistryError
from retrain.registry import Registry, make_client

Versioned = Callable[[int], tuple[Registry, Service]]


def test_promote_moves_champion_and_keeps_the_old_one_as_previous(versioned: Versioned) -> None:
    registry, service = versioned(3)
    registry.promote(service, "1", actor="alice", reason="first")
    done = registry.promote(service, "2", actor="bob", reason="better")
    assert (done.champion, done.previous, done.replaced) == ("2", "1", "1")
    assert registry.aliases(str(service.model_name)) == {"champion": "2", "previous": "1"}
    history = registry.history("credit")
    assert [(h.alias, h.from_version, h.to_version, h.actor) for h in history] == [
        ("champion", "1", "2", "bob"),
        ("previous", None, "1", "bob"),
        ("champion", None, "1", "alice"),
    ]
    assert history[0].reason == "better" and history[0].action == "alias.set"


def test_rollback_swaps_champion_and_previous(versioned: Versioned) -> None:
    registry, service = versioned(2)
    registry.promote(service, "1", actor="a", reason="r")
    registry.promote(service, "2", actor="a", reason="r")
    done = registry.rollback(service, actor="carol", reason="disappointing")
    assert (done.champion, done.previous) == ("1", "2")
    assert registry.aliases(str(service.model_name)) == {"champion": "1", "previous": "2"}
    assert registry.history("credit")[0].reason == "disappointing"


def test_rollback_without_a_previous_version_is_a_conflict(versioned: Versioned) -> None:
    registry, service = versioned(1)
    registry.promote(service, "1", actor="a", reason="r")
    with pytest.raises(Conflict, match="no 'previous' version to roll back to"):
        registry.rollback(service, actor="a", reason="r")


def test_promote_refuses_unknown_and_malformed_versions(versioned: Versioned) -> None:
    registry, service = versioned(1)
    with pytest.raises(NotFound, match=rf"^unknown version '9' of model '{service.model_name}'; GET /v1/services/"):
        registry.promote(service, "9", actor="a", reason="r")
    with pytest.raises(ValidationFailed, match="version: expected a model version number"):
        registry.promote(service, "v2", actor="a", reason="r")
    assert registry.history("credit") == []


@pytest.mark.parametrize("version", [str(10**30), str(2**31), "1e30", "0", "-3", "\u0663", 10**30])
def test_versions_beyond_mlflows_int32_or_not_positive_integers_are_refused_before_mlflow(
    versioned: Versioned, version: object
) -> None:
    """10**30 reached MLflow's SQL store, whose overflow error came back as the answer."""
    registry, service = versioned(1)
    with pytest.raises(ValidationFailed, match=r"^version: expected a model version number from 1 to 2147483647"):
        registry.promote(service, version, actor="a", reason="r")  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match=r"^version: expected a model version number"):
        registry.version(str(service.model_name), version)  # type: ignore[arg-type]


def test_the_largest_int32_version_is_unknown_not_an_mlflow_error(versioned: Versioned) -> None:
    registry, service = versioned(1)
    with pytest.raises(NotFound, match=r"^unknown version '2147483647' of model"):
        registry.promote(service, str(2**31 - 1), actor="a", reason="r")


def test_mlflow_failures_answer_in_mlwatchs_words_not_mlflows(versioned: Versioned) -> None:
    """A tag key MLflow refuses: its INVALID_PARAMETER_VALUE text stays in the log."""
    registry, service = versioned(1)
    model = str(service.model_name)
    with pytest.raises(RegistryError, match=r"could not set model version tag \(version '1' of model") as refused:
        registry.tag_version(model, "1", {"bad/../key" * 30: "x"})
    assert "MLflow error code INVALID_PARAMETER_VALUE" in str(refused.value)
    assert refused.value.__cause__ is not None and str(refused.value.__cause__) not in str(refused.value)


def test_promoting_the_champion_again_changes_nothing(versioned: Versioned) -> None:
    registry, service = versioned(1)
    registry.promote(service, "1", actor="a", reason="r")
    done = registry.promote(service, "1", actor="b", reason="again")
    assert done.replaced == done.champion == "1"
    assert len(registry.history("credit")) == 1


def test_concurrent_promotions_leave_consistent_aliases_and_complete_history(versioned: Versioned) -> None:
    registry, service = versioned(6)
    model = str(service.model_name)
    barrier = threading.Barrier(6)

    def promote(version: str) -> None:
        own = Registry(make_client(str(registry.client._registry_uri)), registry.store)
        barrier.wait()
        own.promote(service, version, actor=f"t{version}", reason="race")

    threads = [threading.Thread(target=promote, args=(str(v),)) for v in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    aliases = registry.aliases(model)
    champions = [h for h in reversed(registry.history("credit")) if h.alias == "champion"]
    assert len(champions) == 6 and champions[0].from_version is None
    assert all(a.to_version == b.from_version for a, b in itertools.pairwise(champions))
    assert aliases["champion"] == champions[-1].to_version
    assert aliases["previous"] == champions[-1].from_version != aliases["champion"]


def test_alias_moved_outside_mlwatch_is_recorded_once(versioned: Versioned) -> None:
    registry, service = versioned(2)
    model = str(service.model_name)
    registry.promote(service, "1", actor="a", reason="r")
    registry.client.set_registered_model_alias(model, "champion", "2")
    changes = registry.notice_external_changes(service)
    assert [(c.alias, c.from_version, c.to_version, c.action) for c in changes] == [
        ("champion", "1", "2", "alias.external_change")
    ]
    assert registry.notice_external_changes(service) == []
    assert registry.history("credit")[0].actor == "mlflow"


def test_promotion_and_rollback_queue_their_webhook_events_with_the_change(versioned: Versioned) -> None:
    registry, _ = versioned(2)
    settings = Settings(webhooks=(WebhookConfig(name="ops", url="http://127.0.0.1:9/hook"),))
    for version in ("1", "2"):
        actions.promote(registry.store, settings, "credit", version, actor="alice", registry=registry)
    actions.rollback(registry.store, settings, "credit", actor="bob", registry=registry)
    actions.promote(registry.store, settings, "credit", "1", actor="carol", registry=registry)  # no change, no event
    events = [d.event_type for d in reversed(registry.store.list_deliveries(receiver="ops"))]
    assert events == ["model.promoted", "model.promoted", "model.rolled_back"]
    assert '"actor":"bob"' in registry.store.list_deliveries(receiver="ops")[0].payload.replace(" ", "")


def test_a_version_without_readable_model_files_is_refused_naming_the_version(
    versioned: Versioned, mlflow_uri: str
) -> None:
    registry, service = versioned(1)  # its source folder holds no MLmodel
    with pytest.raises(
        ValidationFailed, match=r"^version: the model files of version '1' of model 'm-.*' could not be read"
    ):
        registry.input_signature(service.model_name, "1", mlflow_uri)
