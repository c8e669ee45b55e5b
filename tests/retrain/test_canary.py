"""The canary: routing by request id, its guards against the champion, and the policy that rolls
it back or promotes it (on SQLite and PostgreSQL, with a real MLflow registry where it moves aliases)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from monitor.config import Settings
from monitor.errors import ConfigError, ValidationFailed
from monitor.records import LabelRecord, PredictionRecord, Service
from monitor.settings import load_settings
from monitor.store import Store
from retrain import canary
from retrain.stages import check_stage, review, stages_view, start_stage
from tests.retrain.scenario import register

START = 1_000_000.0
"""When the canary stages of these tests start (minute-aligned, so traffic minutes split cleanly)."""


def _settings(tmp_path: Path, stages: list[str] | None = None, **guard: object) -> Settings:
    policy = {
        "service": "credit",
        "auto_promote": True,
        "stages": stages or ["canary"],
        "canary": {"min_requests": 50, "min_labelled": 50, "duration": "1h", **guard},
        "shadow": {"min_labelled": 50},
        "gate": {"metric": "accuracy"},
    }
    return Settings.model_validate({"retrain": [policy], "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})


def _traffic(
    store: Store,
    service: Service,
    version: str,
    n: int,
    *,
    errors: int = 0,
    latency_ms: float = 10.0,
    right: float = 1.0,
    seed: int = 0,
) -> None:
    """``n`` labelled predictions of ``version`` after START, ``errors`` of them failed, exactly
    a share ``right`` of the rest correct (labels drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    correct = round((n - errors) * right)
    records, labels = [], []
    for i in range(n):
        rid = f"{version}-{seed}-{i}"
        ts = START + 60 + i * (600 / n)
        failed = i < errors
        label = int(rng.integers(0, 2))
        said = None if failed else (label if i - errors < correct else 1 - label)
        status = "error" if failed else "ok"
        records.append(PredictionRecord(rid, ts, {"x1": 0.0}, said, None, latency_ms, version, status))
        labels.append(LabelRecord(rid, label, ts))
    store.add_predictions(service, records)
    store.add_labels(service, labels)


@pytest.fixture
def staged(store: Store, tmp_path: Path) -> tuple[Store, Service, Settings]:
    """A service with version 1 champion and version 2 in canary since START (store only)."""
    service = register(store)
    store.start_stage(service, "canary", "2", champion="1", actor="alice", details={"share": 0.2}, now=START)
    return store, service, _settings(tmp_path)


def test_routing_is_sticky_by_request_id_and_splits_in_proportion_to_the_share() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    first = [canary.routed(i, 0.1) for i in ids]
    assert first == [canary.routed(i, 0.1) for i in ids]
    assert sum(first) / len(ids) == pytest.approx(0.1, abs=0.01)
    assert all(canary.routed(i, 0.3) for i, chosen in zip(ids, first, strict=True) if chosen)  # grows, never moves


def test_a_canary_erring_more_than_the_champion_is_rolled_back_with_the_numbers(
    staged: tuple[Store, Service, Settings],
) -> None:
    store, service, settings = staged
    _traffic(store, service, "1", 400, errors=2)
    _traffic(store, service, "2", 100, errors=12)
    ended = review(store, settings, service, now=START + 900)
    assert ended is not None and ended.status == "rolled_back"
    assert ended.reason == (
        "rolled back: error rate 12.0% on 100 requests against the champion's 0.5% (at most 2.0 points above)"
    )
    health = ended.details["health"]
    assert (health["canary"]["errors"], health["champion"]["requests"]) == (12, 400)
    assert ended.details["share"] == 0.2  # what it ran with stays with the record
    entry = store.audit_entries(action="stage.end", target="credit")[0]
    assert entry.details["status"] == "rolled_back" and entry.details["health"]["canary"]["error_rate"] == 0.12
    assert [d.event_type for d in store.list_deliveries()] == []  # no receiver configured: nothing queued
    assert store.active_stage(service) is None


def test_a_canary_slower_than_the_ratio_allows_is_rolled_back(staged: tuple[Store, Service, Settings]) -> None:
    store, service, settings = staged
    _traffic(store, service, "1", 200, latency_ms=10.0)
    _traffic(store, service, "2", 60, latency_ms=40.0)
    ended = review(store, settings, service, now=START + 900)
    assert ended is not None and ended.status == "rolled_back"
    # p95 from the traffic histogram's buckets: within a bucket's width of the 40 and 10 ms sent
    assert re.fullmatch(
        r"rolled back: latency p95 4\d\.\d ms against the champion's 10\.\d ms \(4\.\d\dx, at most 1\.5x\)",
        str(ended.reason),
    )


def test_a_canary_worse_on_live_labels_is_rolled_back(staged: tuple[Store, Service, Settings]) -> None:
    store, service, settings = staged
    _traffic(store, service, "1", 300, right=0.9, seed=1)
    _traffic(store, service, "2", 100, right=0.6, seed=2)
    ended = review(store, settings, service, now=START + 900)
    assert ended is not None and ended.status == "rolled_back"
    assert re.fullmatch(
        r"rolled back: accuracy 0\.6000 on 100 labelled rows against the champion's 0\.9000 on 300 "
        r"\(at most 0\.02 worse; 95% interval of the difference \[-0\.\d+, -0\.\d+\]\)",
        str(ended.reason),
    )
    assert ended.details["health"]["judged"] == ["error_rate", "latency", "quality"]


def test_a_healthy_canary_keeps_running_until_its_duration(staged: tuple[Store, Service, Settings]) -> None:
    store, service, settings = staged
    _traffic(store, service, "1", 300, right=0.9, seed=3)
    _traffic(store, service, "2", 80, right=0.85, seed=4)  # 5 points worse, within the noise of 80 rows
    assert review(store, settings, service, now=START + 900) is None
    (view,) = stages_view(store, settings, service.name)
    assert view.health is not None and view.health.breaches == ()
    assert view.health.canary.requests == 80 and view.health.champion.labelled == 300


def test_a_canary_too_quiet_to_judge_expires_instead_of_being_promoted(
    staged: tuple[Store, Service, Settings],
) -> None:
    store, service, settings = staged
    _traffic(store, service, "1", 300)
    _traffic(store, service, "2", 10)
    ended = review(store, settings, service, now=START + 3600)
    assert ended is not None and ended.status == "expired"
    assert ended.reason == "served 10 requests in 3600s beside the champion's 300; 50 each are needed to judge it"


def test_canary_shares_and_stage_lists_are_checked_naming_the_key(store: Store, tmp_path: Path) -> None:
    register(store)
    assert check_stage("canary") == "canary"
    settings = _settings(tmp_path)
    for share in (0, 1.0, -0.1, True, "half"):
        with pytest.raises(ValidationFailed, match=rf"share: a canary's share .* got {share!r}$"):
            start_stage(store, settings, "credit", "2", "canary", actor="alice", share=share)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match="share: a shadow scores every request and takes no share"):
        start_stage(store, settings, "credit", "2", "shadow", actor="alice", share=0.5)
    path = tmp_path / "mlwatch.yaml"
    for body, message in (
        ("canary: {share: 1.5}", "retrain.0.canary.share"),
        ("canary: {share: 0}", "retrain.0.canary.share"),
        ("stages: [canary, shadow]", "stages run in the order shadow, canary"),
        ("canary: {max_latency_ratio: 0.5}", "retrain.0.canary.max_latency_ratio"),
    ):
        path.write_text(f"retrain:\n  - service: credit\n    {body}\n")
        with pytest.raises(ConfigError, match=message):
            load_settings(path, environ={})


def test_a_shadow_that_passed_goes_on_to_its_canary_when_the_policy_lists_both(tmp_path: Path) -> None:
    """On SQLite alone: registering the versions is the cost here, the store's part is tested on both."""
    from monitor.records import ShadowRow
    from retrain.registry import Registry
    from tests.retrain.scenario import frame
    from tests.retrain.shadow_models import register_versions

    settings = _settings(tmp_path, ["shadow", "canary"])
    store = Store.open(f"sqlite:///{tmp_path / 'mlwatch.db'}", migrate=True)
    service = register(store)
    register_versions(tmp_path, settings.mlflow_tracking_uri, frame(500, seed=0))
    registry = Registry.from_settings(settings, store)
    registry.promote(service, "1", actor="test", reason="first champion")
    shadow = start_stage(store, settings, "credit", "2", "shadow", actor="alice", registry=registry)
    rows = [ShadowRow(f"r-{i}", START, "2", 1, None, 1.0, "1", i % 2) for i in range(100)]
    store.add_shadow_rows(service, shadow.id, rows)
    store.add_labels(service, [LabelRecord(f"r-{i}", 1, START) for i in range(100)])
    ended = review(store, settings, service, registry=registry)
    assert ended is not None and (ended.stage, ended.status) == ("shadow", "passed")
    following = store.active_stage(service)
    assert following is not None and (following.stage, following.version) == ("canary", "2")
    assert (following.actor, following.details) == (f"shadow:{shadow.id}", {"share": 0.1})
    assert registry.aliases("credit") == {"champion": "1", "canary": "2"}  # promoted only once the canary held
    store.close()
