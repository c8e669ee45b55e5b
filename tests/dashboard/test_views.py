"""The overview's logic, without Streamlit: time windows, check summaries, problems and their order."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dashboard.views import (
    CheckHeadline,
    ServiceHealth,
    TimeWindow,
    Traffic,
    champion_of,
    headline_metric,
    problems,
    worst_first,
)
from monitor.check_summary import CheckSummary
from monitor.drift.quality import decay
from monitor.records import CheckRecord
from monitor.store import Store

NO_TRAFFIC = Traffic()


def check(summary: dict[str, Any], status: str = "ok") -> CheckRecord:
    """A check whose summary is stored as ``summary``, with the decay the check computes of its quality."""
    found = CheckSummary.decode(summary)
    found = replace(
        found,
        decay=decay(found.baseline, found.quality),
        estimated_decay=decay(found.baseline, found.estimated_quality),
    )
    return CheckRecord(1, 1, 0.0, 3600.0, 3600.0, "1", status, "schedule", found, {"features": []})


def health(
    name: str,
    traffic: Traffic = NO_TRAFFIC,
    bound: float | None = None,
    summary: CheckHeadline | None = None,
    open_alerts: int = 0,
) -> ServiceHealth:
    """A row as ``service_health`` builds it, from given numbers instead of a store."""
    row = ServiceHealth(name, "classification", traffic, bound, None, None, summary, open_alerts)
    return replace(row, problems=problems(row))


@pytest.mark.parametrize(("seconds", "bucket"), [(900, 60), (3600, 60), (86400, 900), (7 * 86400, 7200)])
def test_a_window_gets_about_120_chart_buckets_of_a_round_size(seconds: float, bucket: int) -> None:
    window = TimeWindow.last(seconds, now=1_000_000.5)
    assert (window.end, window.end - window.start, window.bucket_seconds) == (1_000_020.0, seconds, bucket)
    assert window.whole > window.end and window.whole % 60 == 0


def test_the_gate_metric_is_the_headline_when_measured() -> None:
    summary = {"quality": {"accuracy": 0.9, "f1": 0.7}, "baseline": {"accuracy": 0.92, "f1": 0.8}}
    assert headline_metric(CheckSummary.decode(summary)) == "f1"
    assert headline_metric(CheckSummary.decode(summary), "accuracy") == "accuracy"
    assert headline_metric(CheckSummary.decode({"quality": None})) is None


def test_decay_is_positive_when_quality_gets_worse_whichever_way_the_metric_points() -> None:
    f1 = CheckHeadline.of(check({"quality": {"f1": 0.6}, "baseline": {"f1": 0.8}}))
    rmse = CheckHeadline.of(check({"quality": {"rmse": 12.0}, "baseline": {"rmse": 10.0}}))
    assert f1.decay == pytest.approx(0.25)
    assert rmse.decay == pytest.approx(0.2)
    assert "RMSE 20% worse than its baseline" in problems(health("a", summary=rmse))


def test_estimated_quality_stands_in_before_labels_arrive() -> None:
    summary = CheckHeadline.of(check({"quality": None, "estimated_quality": {"f1": 0.72}, "baseline": {"f1": 0.8}}))
    assert summary.quality is None
    assert summary.decay == pytest.approx(0.1)


def test_problems_name_latency_over_bound_errors_drift_and_alerts() -> None:
    drifting = CheckHeadline.of(check({"dataset_drift": True, "drift_share": 0.5}))
    row = health("a", Traffic(100, 10, 80.0, 50.0), 40.0, summary=drifting, open_alerts=2)
    assert row.problems == (
        "!p95 80 ms over its 40 ms bound",
        "!10.0% errors",
        "!data drift (50% of features)",
        "!2 open alert(s)",
    )
    assert row.status == "critical"


def test_worst_first_orders_critical_warning_no_data_then_ok() -> None:
    rows = [
        health("ok", Traffic(100, 0, 5.0, 4.0), 40.0),
        health("silent"),
        health("slow", Traffic(100, 0, 90.0, 50.0), 40.0),
        health("flaky", Traffic(1000, 2, 5.0, 4.0)),
    ]
    assert [(r.name, r.status) for r in worst_first(rows)] == [
        ("slow", "critical"),
        ("flaky", "warning"),
        ("silent", "no data"),
        ("ok", "ok"),
    ]


def test_the_overview_champion_follows_the_newest_alias_move(store: Store) -> None:
    store.audit("alice", "alias.set", "credit", {"alias": "champion", "from": None, "to": "1"})
    store.audit("alice", "alias.set", "credit", {"alias": "previous", "from": None, "to": "1"})
    assert champion_of(store, "credit") is not None
    store.audit("watcher", "alias.external_change", "credit", {"alias": "champion", "from": "1", "to": "4"})
    found = champion_of(store, "credit")
    assert found is not None and found[0] == "4"
    store.audit("watcher", "alias.external_change", "credit", {"alias": "champion", "from": "4", "to": None})
    assert champion_of(store, "credit") is None


def test_a_drift_share_rule_sets_what_the_banner_and_overview_call_drift() -> None:
    from dashboard.views import drift_threshold
    from monitor.config import AlertRuleConfig

    rules = [
        AlertRuleConfig(name="all-drift", kind="drift_share", threshold=0.5),
        AlertRuleConfig(name="credit-drift", kind="drift_share", service="credit", threshold=0.3),
        AlertRuleConfig(name="fraud-drift", kind="drift_share", service="fraud", threshold=0.1),
    ]
    assert drift_threshold(rules, "credit") == 0.3
    assert drift_threshold(rules[:1], "credit") == 0.5
    assert drift_threshold([], "credit") is None
    # Evidently says no dataset drift at 38%; the rule fires over 30%, so everything says drift.
    summary = CheckHeadline.of(check({"drift_share": 0.38, "dataset_drift": False, "drifted_features": ["a"]}))
    judged = summary.judged_by(drift_threshold(rules, "credit"))
    assert (judged.dataset_drift, judged.verdict, judged.drift_threshold) == (True, "drift", 0.3)
    assert "!data drift (38% of features)" in problems(health("credit", summary=judged))
    assert summary.judged_by(None) == summary


def test_drift_banner_names_the_rule_it_was_judged_by_and_never_contradicts_it() -> None:
    from dashboard.panels.drift import verdict_banner

    summary = CheckHeadline.of(check({"drift_share": 0.38, "dataset_drift": False, "drifted_features": ["a"]}))
    kind, text = verdict_banner(summary.judged_by(0.3))
    assert kind == "warning" and text.startswith("Dataset drift: 38% of features drifted (a)") and "30%" in text
    kind, text = verdict_banner(summary.judged_by(0.5))
    assert kind == "success" and "within the 50%" in text
    assert verdict_banner(summary) == ("success", "No dataset drift in the latest check: 38% of features drifted.")


@pytest.mark.parametrize(
    ("age", "label"),
    [(None, "Last 24 hours"), (600, "Last 15 minutes"), (3000, "Last hour"), (4 * 3600, "Last 6 hours"),
     (20 * 3600, "Last 24 hours"), (3 * 86400, "Last 24 hours")],
)  # fmt: skip
def test_pages_open_on_the_shortest_range_that_shows_all_traffic_of_the_last_day(age: float | None, label: str) -> None:
    from dashboard.views import default_range

    now = 1_000_000.0
    assert default_range(None if age is None else now - age, now) == label


def test_first_traffic_is_read_to_the_minute_from_the_rollups(store: Store) -> None:
    from dashboard.views import first_traffic
    from monitor.records import PredictionRecord

    service = store.upsert_service("credit", task="classification", features=())
    now = 1_000_020.0
    records = [PredictionRecord(f"r{i}", now - 600 + 60 * i, {}, 1) for i in range(5)]
    store.add_predictions(service, records)
    first = first_traffic(store, [service], now - 86400, now)
    assert first == 60 * ((now - 600) // 60)
    assert first_traffic(store, [store.upsert_service("idle", task="classification", features=())], 0, now) is None


def test_joint_drift_line_names_each_multivariate_verdict_and_drifted_descriptors() -> None:
    from dashboard.panels.drift import joint_drift_line

    summary: dict[str, Any] = {
        "multivariate": {
            "drifted": True,
            "methods": {
                "pca": {"score": 1.1, "upper": 0.27, "drifted": True},
                "classifier": {"score": 0.52, "upper": 0.55, "drifted": False},
            },
        },
        "drifted_derived": ["review:length", "a`b"],
    }
    assert joint_drift_line(CheckSummary.decode(summary)) == (
        "**Multivariate drift:** PCA reconstruction error: drift (1.1, bar 0.27); "
        "domain classifier AUC: no drift (0.52, bar 0.55); derived features drifted: `review:length`, `a'b`"
    )
    assert joint_drift_line(CheckSummary.decode({"multivariate": None, "drifted_derived": []})) is None
    assert joint_drift_line(CheckSummary.decode({})) is None  # checks stored before multivariate drift existed


def test_attribution_line_says_which_feature_moved_and_what_the_model_leans_on_now() -> None:
    from dashboard.panels.drift import attribution_line, attribution_table
    from monitor.drift.attribution import attribution_drift, skipped

    found = attribution_drift({"income": 0.7, "age": 0.3}, {"income": 0.2, "age": 0.8}, threshold=0.1)
    summary = CheckSummary(attribution=found)
    assert attribution_line(summary) == (
        "**Attribution drift:** drift: `age`'s share of the importance moved 50% (bar 10%); "
        "the model leans most on `age`, `income` now, on `income`, `age` in the reference"
    )
    table = attribution_table(summary)
    assert table is not None and table["feature"].tolist() == ["income", "age"]
    assert table["change"].tolist() == pytest.approx([-0.5, 0.5])
    unrun = CheckSummary(attribution=skipped("the reference has no 'target` labels", 0.1))
    assert attribution_line(unrun) == "**Attribution drift:** not computed: `the reference has no 'target' labels`"
    assert attribution_line(CheckSummary()) is None and attribution_table(CheckSummary()) is None
