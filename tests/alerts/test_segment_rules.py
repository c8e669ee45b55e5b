"""Rules scoped to a segment: drift_share of one segment value, quality_decay of one cohort."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from monitor.alerts.kinds import check_rule, get_kind
from monitor.alerts.sources import StoreMetricSource
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig
from monitor.records import Service
from monitor.store import Store

NOW = time.time()


def _segment(value: str, share: float, drifted: list[str]) -> dict[str, object]:
    return {"column": "region", "value": value, "rows": 900, "drift_share": share, "drifted_features": drifted}


def _cohort(segment: dict[str, str], drop: float, significant: bool, rows: int = 900) -> dict[str, object]:
    return {"segment": segment, "metric": "accuracy", "source": "realized", "rows": rows, "quality": 0.9 - drop,
            "baseline": 0.9, "baseline_rows": 2000, "baseline_source": "reference", "drop": drop,
            "lower": drop - 0.05 if significant else -0.01, "significant": significant}  # fmt: skip


SUMMARY = {
    "drift_share": 0.1,
    "segments": {
        "columns": ["region", "channel"],
        "metric": "accuracy",
        "segments": [_segment("eu", 0.5, ["income", "age"]), _segment("us", 0.0, [])],
        "cohorts": [
            _cohort({"region": "eu"}, 0.2, True),
            _cohort({"channel": "web", "region": "eu"}, 0.25, True, rows=400),
            _cohort({"region": "apac"}, 0.3, False, rows=20),
        ],
    },
}


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()


@pytest.fixture
def shop(store: Store) -> Service:
    service = store.upsert_service("shop", task="classification")
    store.add_check(service, window_start=NOW - 3600, window_end=NOW, model_version="1", status="ok",
                    trigger="schedule", summary=CheckSummary.decode(SUMMARY), results={"features": []})  # fmt: skip
    return service


def _judge(store: Store, **fields: object) -> list[tuple[dict[str, str], float | None, bool]]:
    rule = AlertRuleConfig.model_validate({"name": "r", "service": "shop", **fields})
    return [(o.scope, o.value, o.breached) for o in get_kind(rule.kind).evaluate(rule, StoreMetricSource(store), NOW)]


def test_drift_share_of_a_segment_judges_that_segment_not_the_service(store: Store, shop: Service) -> None:
    eu = _judge(store, kind="drift_share", threshold=0.3, options={"segment": {"region": "eu"}})
    assert eu == [({"service": "shop", "segment": "region=eu"}, 0.5, True)]
    us = _judge(store, kind="drift_share", threshold=0.3, options={"segment": {"region": "us"}})
    assert us == [({"service": "shop", "segment": "region=us"}, 0.0, False)]
    assert _judge(store, kind="drift_share", threshold=0.3) == [({"service": "shop"}, 0.1, False)]


def test_a_segment_the_check_did_not_judge_keeps_the_alert_as_it_is(store: Store, shop: Service) -> None:
    assert _judge(store, kind="drift_share", threshold=0.3, options={"segment": {"region": "mars"}}) == []
    assert _judge(store, kind="quality_decay", threshold=0.05, options={"segment": {"region": "mars"}}) == []


def test_quality_decay_of_a_cohort_breaches_on_its_own_drop(store: Store, shop: Service) -> None:
    eu = _judge(store, kind="quality_decay", threshold=0.1, options={"segment": {"region": "eu"}})
    assert eu == [({"service": "shop", "metric": "accuracy", "segment": "region=eu"}, 0.2, True)]
    pair = _judge(store, kind="quality_decay", threshold=0.1, options={"segment": {"region": "eu", "channel": "web"}})
    assert pair == [({"service": "shop", "metric": "accuracy", "segment": "channel=web,region=eu"}, 0.25, True)]
    relative = _judge(
        store, kind="quality_decay", threshold=0.2, options={"segment": {"region": "eu"}, "mode": "relative"}
    )
    assert relative[0][1] == pytest.approx(0.2 / 0.9) and relative[0][2]


def test_a_tiny_cohorts_fall_does_not_breach_while_it_is_not_significant(store: Store, shop: Service) -> None:
    apac = _judge(store, kind="quality_decay", threshold=0.1, options={"segment": {"region": "apac"}})
    assert apac == [({"service": "shop", "metric": "accuracy", "segment": "region=apac"}, 0.3, False)]


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        (
            "drift_share",
            {"segment": {"region": "eu", "channel": "web"}},
            "options.segment: expected a mapping of one column",
        ),
        ("drift_share", {"segment": "eu"}, "options.segment: expected a mapping of one column"),
        ("quality_decay", {"segment": {"region": ["eu"]}}, "options.segment.region: expected a segment value"),
        ("quality_decay", {"segment": {}}, "options.segment: expected a mapping of one to 2 columns"),
        ("feature_drift", {"segment": {"region": "eu"}}, "options.segment: not an option of kind 'feature_drift'"),
    ],
)
def test_a_bad_segment_option_is_refused_at_config_load(kind: str, options: dict[str, object], message: str) -> None:
    fields = {"name": "r", "kind": kind, "service": "shop", "threshold": 0.1, "options": options, "feature": "x"}
    with pytest.raises(ValueError, match=message):
        check_rule(AlertRuleConfig.model_validate(fields))


def test_a_cohort_rule_on_a_metric_cohorts_do_not_measure_is_refused() -> None:
    fields = {"name": "r", "kind": "quality_decay", "service": "shop", "threshold": 0.1, "metric": "f1"}
    with pytest.raises(ValueError, match="metric: a segment's quality is measured as accuracy, mae, got 'f1'"):
        check_rule(AlertRuleConfig.model_validate({**fields, "options": {"segment": {"region": "eu"}}}))
