"""Rollout stages in the store (SQLite and PostgreSQL), the shadow comparison and the shadow policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.config import GateConfig, Settings
from monitor.errors import ConfigError, Conflict, ValidationFailed
from monitor.records import LabelRecord, ShadowPair, ShadowRow
from monitor.settings import load_settings
from monitor.store import Store
from retrain.comparison import compare
from retrain.stages import check_stage, review, stages_view
from tests.retrain.scenario import register


def _row(rid: str, shadow: int, champion: int) -> ShadowRow:
    return ShadowRow(rid, 100.0, "2", shadow, {"0": 0.2, "1": 0.8}, 1.5, "1", champion, {"0": 0.4, "1": 0.6})


def _settings(**shadow: object) -> Settings:
    policy = {"service": "credit", "stages": ["shadow"], "shadow": shadow, "gate": {"metric": "accuracy"}}
    return Settings.model_validate({"retrain": [policy]})


def test_a_service_has_one_active_stage_which_ends_once(store: Store) -> None:
    service = register(store)
    stage = store.start_stage(service, "shadow", "2", champion="1", actor="alice")
    with pytest.raises(Conflict, match="already has version 2 in shadow"):
        store.start_stage(service, "shadow", "3", champion="1", actor="bob")
    ended, changed = store.end_stage(service, stage.id, "aborted", "wrong data")
    again, changed_again = store.end_stage(service, stage.id, "passed", "too late")
    assert (changed, changed_again) == (True, False)
    assert (again.status, again.reason) == ("aborted", "wrong data") == (ended.status, ended.reason)
    assert store.active_stage(service) is None
    assert store.start_stage(service, "shadow", "3", champion="1", actor="bob").version == "3"


def test_shadow_rows_pair_with_labels_by_request_id_and_are_kept_once(store: Store) -> None:
    service = register(store)
    stage = store.start_stage(service, "shadow", "2", champion="1", actor="alice")
    assert store.add_shadow_rows(service, stage.id, [_row("a-0", 1, 0), _row("a-1", 1, 1)]) == 2
    assert store.add_shadow_rows(service, stage.id, [_row("a-1", 0, 0), _row("a-2", 0, 0)]) == 1
    store.add_labels(service, [LabelRecord("a-0", 1, 100.0)])
    pairs = {p.request_id: p for p in store.shadow_pairs(service, stage.id)}
    assert sorted(pairs) == ["a-0", "a-1", "a-2"] and store.shadow_row_count(stage.id) == 3
    assert (pairs["a-0"].label, pairs["a-0"].has_label, pairs["a-1"].has_label) == (1, True, False)
    assert (pairs["a-1"].prediction, pairs["a-1"].champion_prediction) == (1, 1)  # the first kept
    assert pairs["a-0"].probabilities == {"0": 0.2, "1": 0.8}


def test_shadow_rows_are_deleted_with_the_predictions_past_retention(store: Store) -> None:
    from monitor.config import RetentionConfig

    service = register(store)
    stage = store.start_stage(service, "shadow", "2", champion="1", actor="alice")
    now = 100.0 + 40 * 86400
    store.add_shadow_rows(service, stage.id, [_row("old", 1, 1), ShadowRow("new", now - 60, "2", 1, None, 1.0, "1", 1)])
    assert store.purge(RetentionConfig(), now)["shadow_predictions"] == 1
    assert [p.request_id for p in store.shadow_pairs(service, stage.id)] == ["new"]


def _pairs(truth: np.ndarray, shadow: np.ndarray, champion: np.ndarray) -> list[ShadowPair]:
    return [
        ShadowPair(str(i), int(s), None, int(c), None, int(t), True)
        for i, (t, s, c) in enumerate(zip(truth, shadow, champion, strict=True))
    ]


def test_a_shadow_clearly_better_on_live_labels_passes_the_gate() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 600)
    shadow = np.where(rng.random(600) < 0.95, truth, 1 - truth)
    champion = np.where(rng.random(600) < 0.75, truth, 1 - truth)
    found = compare(_pairs(truth, shadow, champion), "classification", GateConfig(metric="accuracy"))
    assert found.rows == found.labelled == 600
    assert found.agreement == pytest.approx(float(np.mean(shadow == champion)))
    assert found.shadow is not None and found.champion is not None
    assert found.shadow["accuracy"] > found.champion["accuracy"] + 0.1
    assert found.verdict is not None and found.verdict.passed and "interval" in found.verdict.reason


def test_a_shadow_better_by_noise_alone_is_not_significantly_better() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 600)
    champion = np.where(rng.random(600) < 0.8, truth, 1 - truth)
    shadow = champion.copy()
    wrong = np.flatnonzero(shadow != truth)[:2]
    shadow[wrong] = truth[wrong]  # two rows better: inside the noise of 600 rows
    found = compare(_pairs(truth, shadow, champion), "classification", GateConfig(metric="accuracy"))
    assert found.verdict is not None and not found.verdict.passed
    assert "not significantly better" in found.verdict.reason


def test_before_labels_the_comparison_gives_agreement_and_estimated_quality_only() -> None:
    pairs = [ShadowPair("a", 1, {"0": 0.1, "1": 0.9}, 0, {"0": 0.7, "1": 0.3}, None, False)]
    found = compare(pairs, "classification", GateConfig())
    assert (found.agreement, found.labelled, found.verdict) == (0.0, 0, None)
    assert found.estimated == {"champion": pytest.approx(0.7), "shadow": pytest.approx(0.9)}


def test_a_shadow_without_enough_labels_expires_after_max_duration(store: Store) -> None:
    service = register(store)
    settings = _settings(min_labelled=5, max_duration="1h")
    stage = store.start_stage(service, "shadow", "2", champion="1", actor="alice", now=1000.0)
    store.add_shadow_rows(service, stage.id, [_row("r-0", 1, 1)])
    assert review(store, settings, service, now=1000.0 + 3599) is None
    ended = review(store, settings, service, now=1000.0 + 3600)
    assert ended is not None and ended.status == "expired"
    assert ended.reason == "0 of the 5 labelled rows needed after 3600s in shadow"
    assert ended.details["comparison"]["rows"] == 1


def test_a_shadow_no_better_on_enough_labelled_rows_fails_without_promotion(store: Store) -> None:
    service = register(store)
    settings = _settings(min_labelled=3)
    stage = store.start_stage(service, "shadow", "2", champion="1", actor="alice")
    store.add_shadow_rows(service, stage.id, [_row(f"r-{i}", 0, 1) for i in range(3)])
    store.add_labels(service, [LabelRecord(f"r-{i}", 1, 100.0) for i in range(3)])
    ended = review(store, settings, service)  # no registry needed: nothing is promoted
    assert ended is not None and ended.status == "failed"
    assert ended.reason is not None and ended.reason.startswith("not better on 3 live labelled rows")
    assert [v.stage.status for v in stages_view(store, settings, service.name)] == ["failed"]


def test_stage_names_are_checked() -> None:
    assert (check_stage("shadow"), check_stage("canary")) == ("shadow", "canary")
    with pytest.raises(ValidationFailed, match="stage: unknown stage 'blue_green'"):
        check_stage("blue_green")


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ("[canary, shadow]", "retrain.0.stages: Value error, stages run in the order shadow, canary"),
        ("[shadow, bluegreen]", "retrain.0.stages: Value error, unknown stage 'bluegreen'"),
        ("[shadow, shadow]", "retrain.0.stages: Value error, each stage may be listed once"),
    ],
)
def test_a_stage_list_naming_an_unknown_stage_is_refused_at_load(tmp_path: Path, stages: str, message: str) -> None:
    path = tmp_path / "mlwatch.yaml"
    path.write_text(f"retrain:\n  - service: credit\n    stages: {stages}\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_settings(path, environ={})


def test_the_shadow_policy_reads_durations_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mlwatch.yaml"
    path.write_text("retrain:\n  - service: credit\n    stages: [shadow]\n    shadow: {max_duration: 2h}\n")
    policy = load_settings(path, environ={}).retrain_policy("credit")
    assert (policy.stages, policy.shadow.min_labelled, policy.shadow.max_duration) == (("shadow",), 500, 7200.0)
    assert Settings().retrain_policy("credit").stages == ()
