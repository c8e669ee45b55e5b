"""Every page renders against a seeded store without an exception and shows what matters."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.session import SESSION_KEY
from monitor.drift.report import REPORT_MARK
from monitor.store import Store
from tests.dashboard.conftest import APP, seed, signed_in

Open = Callable[..., AppTest]


def texts(at: AppTest) -> str:
    """Everything the page wrote, as one string."""
    parts = [
        e.value
        for kind in ("title", "markdown", "caption", "info", "warning", "success", "error")
        for e in getattr(at, kind)
    ]
    parts += [m.label + " " + str(m.value) for m in at.metric]
    return "\n".join(str(p) for p in parts)


def test_login_page_is_all_an_anonymous_visitor_sees(open_app: Open) -> None:
    at = open_app(role=None)
    assert not at.exception
    assert [t.value for t in at.title] == ["mlwatch"]
    [form] = at.get("html")
    assert '<form method="post" action="/auth/login"' in form.proto.body
    assert "Password or API token" in form.proto.body
    assert not at.get("vega_lite_chart") and not at.dataframe


def test_overview_lists_every_service_worst_first(open_app: Open) -> None:
    at = open_app()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["service"]) == ["fraud", "credit", "churn"]
    assert table.iloc[0]["status"] == "critical"
    assert "drift" in table.iloc[0]["drift"]
    assert table.iloc[1]["requests"] == 120


def test_service_page_opens_on_performance_against_the_latency_bound(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="fraud")
    assert not at.exception
    shown = texts(at)
    assert "fraud" in [t.value for t in at.title]
    assert "Requests 120" in shown and "Errors 5" in shown
    assert "bound 20 ms dashed" in shown
    assert "p95 latency went over its 20 ms bound in this range." in shown
    assert len(at.get("vega_lite_chart")) == 3


def test_drift_section_shows_the_latest_verdict_and_a_heatmap(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="fraud", section="Data drift")
    assert not at.exception
    assert "Dataset drift: 50% of features drifted (income)" in texts(at)
    assert any("PCA reconstruction error: drift (1.4, bar 0.3)" in m.value for m in at.markdown)
    verdicts = at.dataframe[0].value
    assert list(verdicts["feature"]) == ["income", "region"]
    assert len(at.get("vega_lite_chart")) == 1


def test_quality_section_compares_realized_and_estimated_with_the_baseline(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="fraud", section="Quality")
    assert not at.exception
    shown = texts(at)
    assert "f1 (realized) 0.620" in shown and "f1 (estimated) 0.640" in shown
    assert "Label coverage 33%" in shown and "Baseline f1: 0.800" in shown


def test_resources_section_draws_the_agents_metrics(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="fraud", section="Resources")
    assert not at.exception
    assert [m.value for m in at.multiselect] == [
        ["cpu_percent", "memory_percent"],
        ["gpu_utilization", "gpu_memory_used_mb"],
    ]
    assert len(at.get("vega_lite_chart")) == 4


def test_predictions_section_filters_by_text_and_status(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="credit", section="Predictions")
    assert not at.exception
    assert len(at.dataframe[0].value) == 120
    at.selectbox(key="pred_status_credit").select("error").run()
    errors = at.dataframe[0].value
    assert set(errors["status"]) == {"error"} and len(errors) == 5
    at.text_input(key="pred_text_credit").input("credit-100").run()
    assert list(at.dataframe[0].value["request_id"]) == ["credit-100"]


def test_service_without_checks_says_how_to_run_one(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="credit", section="Data drift")
    assert not at.exception
    assert "mlwatch check credit" in texts(at)


def test_the_kept_evidently_report_of_a_check_is_embedded(open_app: Open, dashboard_env: str) -> None:
    store = Store.open(dashboard_env)
    newest = store.latest_check(store.get_service("fraud"))
    assert newest is not None
    store.set_check_report(newest.id, f"<html>{REPORT_MARK}<body><h1>Data Drift Report</h1></body></html>".encode())
    store.close()
    at = open_app(page="pages/service.py", service="fraud", section="Data drift")
    at.button(key="show_report").click().run()
    assert not at.exception
    [frame] = at.get("iframe")
    assert frame.proto.srcdoc.startswith('<iframe sandbox="allow-scripts" ')  # no allow-same-origin
    assert "&lt;h1&gt;Data Drift Report&lt;/h1&gt;" in frame.proto.srcdoc


def test_a_report_that_cannot_be_made_is_an_error_message_not_a_traceback(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="fraud", section="Data drift")
    at.button(key="show_report").click().run()
    assert not at.exception
    assert "Could not make the report" in at.error[0].value
    assert "reference" in at.error[0].value


def test_an_unreachable_store_is_an_error_message_and_signs_no_one_in(
    dashboard_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cookie = signed_in("operator-user")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("MLWATCH_STORE_URL", f"sqlite:///{blocker}/mlwatch.db")
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[SESSION_KEY] = cookie
    at.run()
    assert not at.exception
    assert any("Could not check the sign-in" in e.value for e in at.error)
    assert [t.value for t in at.title] == ["mlwatch"]  # the login page, not the overview


def test_every_page_renders_on_each_store_backend(
    store_url: str, monkeypatch: pytest.MonkeyPatch, config_file: Path
) -> None:
    store = Store.open(store_url, migrate=True)
    seed(store, time.time())
    store.close()
    monkeypatch.setenv("MLWATCH_STORE_URL", store_url)
    monkeypatch.setenv("MLWATCH_CONFIG", str(config_file))
    st.cache_data.clear()
    st.cache_resource.clear()
    for page, section in [(None, None), ("pages/service.py", None), ("pages/service.py", "Data drift"),
                          ("pages/service.py", "Predictions"), ("pages/alerts.py", None)]:  # fmt: skip
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state[SESSION_KEY] = signed_in("olga")
        at.query_params.update({"service": "fraud", **({"section": section} if section else {})})
        at.run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, (page, section)
        assert not at.error, (page, section, at.error[0].value if at.error else "")
    st.cache_resource.clear()


def test_overview_shows_each_stream_consumer_from_its_heartbeat(open_app: Open, dashboard_env: str) -> None:
    from monitor.store.consumers import ConsumerStatus

    store = Store.open(dashboard_env)
    now = time.time()
    lag = (0, 0, 0, 5, 90, 4, 1) + (0,) * 8  # 100 messages, the 99th under 0.5 s
    store.record_consumer(
        ConsumerStatus(
            "edge:41",
            "MLWATCH",
            "mlwatch",
            now - 60,
            now - 2,
            stored=9000,
            dead_lettered=3,
            pending=120,
            records_per_second=1500.0,
            lag_buckets=lag,
            lag_sum=20.0,
        )
    )
    store.record_consumer(ConsumerStatus("gone:7", "MLWATCH", "mlwatch", now - 90_000, now - 86_400))
    store.close()
    at = open_app()
    assert not at.exception
    assert "Stream consumers" in [h.value for h in at.subheader]
    table = at.dataframe[1].value
    assert list(table["consumer"]) == ["edge:41"]  # the one not heard from for a day is left out
    row = table.iloc[0]
    assert (row["stored"], row["dead letters"], row["pending"], row["lag p99 s"]) == (9000, 3, 120, 0.5)


def test_segments_section_shows_the_worst_cohort_first_and_keeps_sent_values_as_text(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="fraud", section="Segments")
    assert not at.exception
    shown = texts(at)
    assert "Worst cohort: `region=<b>eu</b>`, accuracy 0.600 against its own 0.900 (40 rows)." in shown
    cohorts, table = at.dataframe[0].value, at.dataframe[1].value
    assert list(cohorts["cohort"]) == ["region=<b>eu</b>", "region=us"]
    assert list(cohorts["significant"]) == [True, False]
    assert list(table["value"]) == ["<b>eu</b>", "us"]
    assert list(table["compared with"]) == ["its reference rows", "the whole reference"]
    assert "`channel`: no sampled prediction sends this key" in shown
    assert all("<b>" not in h.proto.body for h in at.get("html"))  # no markup is rendered from a sent value
