"""The alerts, silences, alert-rules and webhooks endpoints on a real server process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from monitor.alerts.engine import AlertEngine
from monitor.check_summary import CheckSummary
from monitor.settings import load_settings
from monitor.store import Store
from tests.conftest import RunningServer, start_server

CONFIG = """
dashboard_url: http://dash.local:8501
webhooks:
  - {name: ops, url: 'http://127.0.0.1:9/hook'}
  - {name: chat, url: 'http://127.0.0.1:9/slack', format: slack}
alerts:
  - {name: credit-drift, kind: drift_share, service: credit, threshold: 0.3}
"""


@dataclass
class Api:
    server: RunningServer
    store: Store
    tokens: dict[str, str]

    def as_(self, role: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    workdir = tmp_path_factory.mktemp("alerts-api")
    (workdir / "mlwatch.yaml").write_text(CONFIG)
    url = f"sqlite:///{workdir / 'mlwatch.db'}"
    server = start_server(workdir, url, {"MLWATCH_CONFIG": str(workdir / "mlwatch.yaml")})
    store = Store.open(url)
    tokens = {role: store.create_token(role) for role in ("ingest", "viewer", "operator", "admin")}
    yield Api(server, store, tokens)
    server.stop()
    store.close()


@pytest.fixture(scope="module")
def firing(api: Api) -> int:
    """One firing alert, made by the engine from a stored check."""
    service = api.store.upsert_service("credit", task="classification")
    api.store.add_check(
        service, window_start=0, window_end=1, model_version="1", status="ok", trigger="schedule",
        summary=CheckSummary(drift_share=0.6, drifted_features=("a",)), results={"features": []},
    )  # fmt: skip
    settings = load_settings(api.server.workdir / "mlwatch.yaml", environ={})
    AlertEngine(api.store, settings).tick()
    return api.store.list_alerts()[0].id


def test_alerts_need_a_viewer_token(api: Api) -> None:
    assert api.as_(None).get("/v1/alerts").status_code == 401
    assert api.as_("ingest").get("/v1/alerts").status_code == 403


def test_alerts_are_listed_and_filtered(api: Api, firing: int) -> None:
    viewer = api.as_("viewer")
    listed = viewer.get("/v1/alerts", params={"state": "firing"}).json()
    assert [(a["id"], a["rule"], a["service"], a["value"]) for a in listed] == [(firing, "credit-drift", "credit", 0.6)]
    assert viewer.get("/v1/alerts", params={"state": "resolved"}).json() == []
    bad = viewer.get("/v1/alerts", params={"state": "burning"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"
    assert viewer.get(f"/v1/alerts/{firing}").json()["state"] == "firing"
    assert viewer.get("/v1/alerts/99999").status_code == 404


def test_acknowledging_needs_an_operator_and_an_active_alert(api: Api, firing: int) -> None:
    assert api.as_("viewer").post(f"/v1/alerts/{firing}/ack").status_code == 403
    acked = api.as_("operator").post(f"/v1/alerts/{firing}/ack", json={"comment": "on it"})
    assert acked.status_code == 200 and acked.json()["acked_by"].startswith("token:")
    assert api.as_("operator").post("/v1/alerts/99999/ack").status_code == 404
    entries = api.store.audit_entries(action="alert.ack", target=f"alert:{firing}")
    assert entries[0].details["comment"] == "on it"


def test_acknowledging_a_resolved_alert_is_a_conflict(api: Api, firing: int) -> None:
    with api.store.write_transaction() as conn:
        resolved = api.store.insert_alert(
            conn,
            {"fingerprint": "f" * 64, "rule": "old", "kind": "drift_share", "state": "resolved", "severity": "info",
             "labels": {}, "summary": "done", "started_at": 1.0, "resolved_at": 2.0},
        )  # fmt: skip
    answer = api.as_("operator").post(f"/v1/alerts/{resolved}/ack")
    assert answer.status_code == 409 and "already resolved" in answer.json()["message"]


def test_an_inhibited_alert_is_listed_with_the_alert_that_mutes_it(api: Api, firing: int) -> None:
    with api.store.write_transaction() as conn:
        muted = api.store.insert_alert(
            conn,
            {"fingerprint": "m" * 64, "rule": "credit-f00", "kind": "feature_drift", "state": "firing",
             "severity": "warning", "labels": {}, "summary": "drifted", "started_at": 1.0, "inhibited_by": firing},
        )  # fmt: skip
    viewer = api.as_("viewer")
    assert viewer.get(f"/v1/alerts/{muted}").json()["inhibited_by"] == firing
    listed = {a["id"]: a["inhibited_by"] for a in viewer.get("/v1/alerts").json()}
    assert listed[muted] == firing and listed[firing] is None


def test_silences_are_created_listed_and_ended(api: Api) -> None:
    operator = api.as_("operator")
    made = operator.post(
        "/v1/silences", json={"matchers": {"service": "credit"}, "duration": "2h", "comment": "deploy"}
    )
    assert made.status_code == 201
    silence = made.json()
    assert silence["active"] and silence["ends_at"] - silence["starts_at"] == pytest.approx(7200)
    active = api.as_("viewer").get("/v1/silences", params={"active": "true"}).json()
    assert silence["id"] in [s["id"] for s in active]
    ended = operator.delete(f"/v1/silences/{silence['id']}")
    assert ended.status_code == 200 and not ended.json()["active"]
    assert operator.delete("/v1/silences/99999").status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"matchers": {}, "duration": "1h"}, "matchers", "at least 1 item"),
        ({"matchers": {"service": "a"}}, "ends_at", "exactly one of ends_at"),
        ({"matchers": {"service": "a"}, "duration": "1h", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at", "exactly one"),
        ({"matchers": {"service": "a"}, "ends_at": "2001-01-01T00:00:00Z"}, "ends_at", "in the future"),
        ({"matchers": {"service": "a"}, "duration": "soon"}, "duration", "expected a duration"),
        ({"matchers": {"service": 3}, "duration": "1h"}, "matchers.service", "valid string"),
        ({"matchers": {"service": "a"}, "duration": "1h", "comment": "\x00"}, "comment", "without NUL"),
        ({"matchers": {"service": "v" * 1_000_000}, "duration": "1h"}, "matchers.service", "at most 200 characters"),
    ],
)
def test_bad_silences_are_refused_naming_the_field(api: Api, body: dict[str, object], field: str, message: str) -> None:
    answer = api.as_("operator").post("/v1/silences", json=body)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == field and message in answer.json()["message"]


def test_config_rules_are_listed_and_protected(api: Api) -> None:
    operator = api.as_("operator")
    assert api.as_("viewer").get("/v1/alert-rules").status_code == 403
    rules = {r["name"]: r for r in operator.get("/v1/alert-rules").json()}
    assert rules["credit-drift"]["source"] == "config" and rules["credit-drift"]["spec"]["threshold"] == 0.3
    edit = operator.put("/v1/alert-rules/credit-drift", json={"kind": "drift_share", "threshold": 0.9})
    assert edit.status_code == 409 and "mlwatch.yaml" in edit.json()["message"]
    assert operator.delete("/v1/alert-rules/credit-drift").status_code == 409


def test_api_rules_are_created_replaced_and_deleted(api: Api) -> None:
    operator = api.as_("operator")
    made = operator.put(
        "/v1/alert-rules/slow", json={"kind": "latency", "threshold": 250, "metric": "p99", "for": "5m"}
    )
    assert made.status_code == 200 and made.json()["source"] == "api" and made.json()["spec"]["for"] == 300.0
    replaced = operator.put("/v1/alert-rules/slow", json={"kind": "latency", "threshold": 400, "enabled": False})
    assert replaced.json()["spec"]["threshold"] == 400 and replaced.json()["enabled"] is False
    assert operator.get("/v1/alert-rules/slow").json()["spec"]["metric"] is None
    assert operator.delete("/v1/alert-rules/slow").status_code == 204
    assert operator.get("/v1/alert-rules/slow").status_code == 404
    assert [e.action for e in api.store.audit_entries(target="alert_rule:slow")] == [
        "alert_rule.delete",
        "alert_rule.put",
        "alert_rule.put",
    ]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"kind": "drfit"}, "kind", "unknown kind 'drfit'; expected one of drift_share, feature_drift"),
        ({"kind": "feature_drift"}, "feature", "required for kind 'feature_drift'"),
        ({"kind": "latency", "threshold": "fast"}, "threshold", "valid number"),
        ({"kind": "drift_share", "name": "other"}, "name", "expected the name in the path"),
        ({"kind": "drift_share", "enabled": "yes"}, "enabled", "expected true or false"),
        ({"kind": "drift_share", "colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({"kind": "drift_share", "threshold": float("nan")}, "threshold", "expected a finite number"),
        ({"kind": "drift_share", "threshold": float("inf")}, "threshold", "expected a finite number"),
        ({"kind": "drift_share", "repeat_interval": "0s"}, "repeat_interval", "expected a positive duration"),
        ({"kind": "drift_share", "for": "9" * 400}, "for", "expected a duration"),
        ({"kind": "drift_share", "labels": {"team": "a\x00"}}, "labels.team", "without NUL characters"),
        ({"kind": "drift_share", "service": "x" * 1_000_000}, "service", "at most 200 characters"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(api: Api, body: dict[str, object], field: str, message: str) -> None:
    raw = json.dumps(body).encode()  # NaN and Infinity as JavaScript writes them, which httpx's json= refuses
    answer = api.as_("operator").put("/v1/alert-rules/bad", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field and message in answer.json()["message"]


def test_test_event_goes_through_the_outbox(api: Api) -> None:
    assert api.as_("operator").post("/v1/webhooks/test").status_code == 403
    sent = api.as_("admin").post("/v1/webhooks/test", json={"receiver": "chat"})
    assert sent.status_code == 202 and sent.json()["receivers"] == ["chat"]
    both = api.as_("admin").post("/v1/webhooks/test").json()
    assert both["receivers"] == ["ops", "chat"]
    missing = api.as_("admin").post("/v1/webhooks/test", json={"receiver": "pager"})
    assert missing.status_code == 404 and "configured: ops, chat" in missing.json()["message"]
    log = api.as_("viewer").get("/v1/webhooks/deliveries", params={"event_id": both["event_id"]}).json()
    assert isinstance(log, list), log
    assert sorted(d["receiver"] for d in log) == ["chat", "ops"]
    assert all(d["status"] == "pending" and d["event_type"] == "test" for d in log)


def test_delivery_log_filters_are_validated(api: Api) -> None:
    viewer = api.as_("viewer")
    assert viewer.get("/v1/webhooks/deliveries", params={"status": "lost"}).status_code == 422
    assert viewer.get("/v1/webhooks/deliveries", params={"limit": 0}).status_code == 422
    assert api.as_("ingest").get("/v1/webhooks/deliveries").status_code == 403
    api.as_("admin").post("/v1/webhooks/test", json={"receiver": "ops"})
    limited = viewer.get("/v1/webhooks/deliveries", params={"receiver": "ops", "limit": 1}).json()
    assert len(limited) == 1 and limited[0]["receiver"] == "ops"


def test_event_schema_is_served_to_viewers(api: Api) -> None:
    assert api.as_(None).get("/v1/webhooks/schema").status_code == 401
    schema = api.as_("viewer").get("/v1/webhooks/schema").json()
    assert schema["title"] == "mlwatch.event/v1" and "dashboard_url" in schema["required"]


def test_a_rule_with_a_1mb_label_key_or_deep_options_is_refused(api: Api) -> None:
    operator = api.as_("operator")
    long_key = operator.put("/v1/alert-rules/big", json={"kind": "drift_share", "labels": {"k" * 1_000_000: "v"}})
    nested: object = 1
    for _ in range(40):
        nested = [nested]
    deep = operator.put("/v1/alert-rules/deep", json={"kind": "drift_share", "options": {"min_rows": nested}})
    assert long_key.status_code == 422 and "at most 200 characters" in long_key.json()["message"]
    assert len(long_key.content) < 2000  # the key is not echoed back whole
    assert deep.status_code == 422 and "nested at most 32 levels deep" in deep.json()["message"]
    assert operator.get("/v1/alert-rules/big").status_code == 404


def test_a_rule_body_without_a_valid_token_is_refused_before_it_is_read(api: Api) -> None:
    deep = b'{"kind": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    for role in (None, "viewer"):
        answer = api.as_(role).put("/v1/alert-rules/x", content=deep, headers={"content-type": "application/json"})
        assert answer.status_code == (401 if role is None else 403), answer.text
