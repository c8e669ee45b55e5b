"""Reproducers of issue 14: bodies nobody authenticated, values no store can hold, settings
accepted and then broken, and 4xx answers that said too much. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import create_engine, text

from monitor.store import Store
from tests.conftest import RunningServer, start_server

FEATURES = [{"name": "age"}, {"name": "city", "type": "categorical"}]
BIG = 2**64


@dataclass
class Api:
    server: RunningServer
    tokens: dict[str, str]

    def as_(self, role: str | None = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)


def _schema_url(base: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    workdir = tmp_path_factory.mktemp(f"hardening-{request.param}")
    urls = iter([f"sqlite:///{workdir / 'mlwatch.db'}"])
    if request.param == "postgresql":
        urls = _schema_url(request.getfixturevalue("postgres_server"))
    url = next(urls)
    store = Store.open(url, migrate=True)
    tokens = {role: store.create_token(role) for role in ("ingest", "viewer", "operator", "admin")}
    server = start_server(workdir, url)
    tokens["admin"] = server.token
    with server.client() as client:
        client.post("/v1/services", json={"name": "credit", "features": FEATURES}).raise_for_status()
        client.post("/v1/services", json={"name": "secret-project"}).raise_for_status()
    yield Api(server, tokens)
    server.stop()
    store.close()
    next(urls, None)  # drops the PostgreSQL schema


def _body_routes(api: Api) -> list[tuple[str, str]]:
    paths = httpx.get(f"{api.server.url}/openapi.json").json()["paths"]
    routes = [(m.upper(), p) for p, ops in paths.items() for m, op in ops.items() if "requestBody" in op]
    fill = {"{service}": "credit", "{host}": "node-1", "{alert_id}": "1", "{name}": "rule-1"}
    for key, value in fill.items():
        routes = [(m, p.replace(key, value)) for m, p in routes]
    return routes


DEEP = b'{"records": [{"features": {"age": ' + b"[" * 2000 + b"]" * 2000 + b"}}]}"
UNAUTHENTICATED_BODIES = [
    ("nested 2000 deep", DEEP),
    ("not UTF-8", b'{"name": "\xff\xfe"}'),
    ("not JSON", b"{{{"),
    ("valid JSON of the wrong shape", b'{"colour": "red"}'),
]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["no token", "wrong token"])
@pytest.mark.parametrize(("case", "body"), UNAUTHENTICATED_BODIES, ids=[c[0] for c in UNAUTHENTICATED_BODIES])
def test_every_body_route_refuses_a_caller_without_a_valid_token_before_reading_the_body(
    api: Api, case: str, body: bytes, headers: dict[str, str]
) -> None:
    routes = _body_routes(api)
    assert len(routes) >= 14
    for method, path in routes:
        sent = {"content-type": "application/json", **headers}
        answer = httpx.request(method, f"{api.server.url}{path}", content=body, headers=sent)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["error"] == "unauthorized"


def test_a_body_nested_too_deep_is_a_422_with_a_token(api: Api) -> None:
    with api.as_() as client:
        answer = client.post("/v1/services/credit/predictions", content=DEEP)
    assert answer.status_code == 422 and "body: expected JSON nested at most 32 levels" in answer.json()["message"]


def test_a_body_that_is_not_utf8_is_a_400(api: Api) -> None:
    body = b'{"records": [{"request_id": "\xff"}]}'
    with api.as_() as client:
        answer = client.post("/v1/services/credit/predictions", content=body)
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["message"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/services/credit/stats", {"start": "6e20"}, "start"),
        ("/v1/services/credit/stats", {"end": "-6e20"}, "end"),
        ("/v1/services/credit/checks", {"since": "1e300"}, "since"),
        ("/v1/alerts/4294967296", {}, "alert_id"),
        ("/v1/jobs/9223372036854775807", {}, "job_id"),
    ],
)
def test_times_and_ids_out_of_range_are_a_422_naming_them(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    with api.as_() as client:
        answer = client.get(path, params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field


@pytest.mark.parametrize("value", [6e20, -6e20])
def test_a_check_window_out_of_range_is_a_422_naming_it(api: Api, value: float) -> None:
    with api.as_() as client:
        answer = client.post("/v1/services/credit/checks", json={"start": 0, "end": value})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "end"


def _record(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {"request_id": uuid.uuid4().hex, "timestamp": time.time(), "features": {"age": 1}}
    return {**record, **overrides}


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        (_record(features={"age": BIG}), "records[0].features.age", "integer from -2**63"),
        (_record(features={"age": -BIG}), "records[0].features.age", "integer from -2**63"),
        (_record(prediction=BIG), "records[0].prediction", "integer from -2**63"),
        (_record(prediction=[1, BIG]), "records[0].prediction", "integer from -2**63"),
        (_record(features={"city": "x" * 1_000_001}), "records[0].features.city", "at most 1000 characters"),
        (_record(prediction="x" * 1_000_001), "records[0].prediction", "at most 1000 characters"),
        (_record(request_id="a\x00b"), "records[0].request_id", "NUL"),
        (_record(model_version="1\x00"), "records[0].model_version", "NUL"),
        (_record(features={"city": "pa\x00ris"}), "records[0].features.city", "NUL"),
        (_record(prediction="a\x00"), "records[0].prediction", "NUL"),
        (_record(probabilities={"a\x00": 0.5}), "records[0].probabilities", "NUL"),
        (_record(latency_ms=1e300), "records[0].latency_ms", "less than or equal"),
        (_record(probabilities=[0.5, 1e308]), "records[0].probabilities", "less than or equal to 1"),
        (_record(probabilities={"a": -0.5}), "records[0].probabilities", "greater than or equal to 0"),
    ],
    ids=[
        "int feature",
        "negative int feature",
        "int prediction",
        "int in a prediction list",
        "1 MB category",
        "1 MB prediction string",
        "NUL request id",
        "NUL model version",
        "NUL category",
        "NUL prediction",
        "NUL class name",
        "latency of 1e300 ms",
        "probability of 1e308",
        "negative probability",
    ],
)
def test_values_no_store_can_hold_are_a_422_naming_the_field(
    api: Api, record: dict[str, object], field: str, message: str
) -> None:
    with api.as_() as client:
        answer = client.post("/v1/services/credit/predictions", json={"records": [record]})
    assert answer.status_code == 422, answer.text[:500]
    assert answer.json()["errors"][0]["field"].startswith(field) and message in answer.json()["message"]


def test_a_service_without_features_refuses_keys_it_cannot_store(api: Api) -> None:
    with api.as_() as client:
        long_key = client.post(
            "/v1/services/secret-project/predictions", json={"records": [_record(features={"k" * 300: 1})]}
        )
        nul_key = client.post(
            "/v1/services/secret-project/predictions", json={"records": [_record(features={"a\x00": None})]}
        )
    assert long_key.status_code == 422 and "at most 200 characters" in long_key.json()["message"]
    assert nul_key.status_code == 422 and "NUL" in nul_key.json()["message"]


@pytest.mark.parametrize(
    ("value", "message"), [(BIG, "integer from -2**63"), ("pa\x00ris", "NUL"), ([1], "expected a number")]
)
def test_a_service_without_features_checks_every_value_of_a_name_it_took_already(
    api: Api, value: object, message: str
) -> None:
    """Each name of a schema-less service is checked once a batch; its values, every time."""
    records = [_record(features={"x": 0.5}), _record(features={"x": 1}), _record(features={"x": value})]
    with api.as_() as client:
        answer = client.post("/v1/services/secret-project/predictions", json={"records": records})
    assert answer.status_code == 422, answer.text[:500]
    assert answer.json()["errors"][0]["field"] == "records[2].features.x" and message in answer.json()["message"]


@pytest.mark.parametrize(
    ("label", "message"), [(BIG, "integer from -2**63"), ("x" * 1_000_001, "at most 1000"), ("a\x00", "NUL")]
)
def test_labels_no_store_can_hold_are_a_422(api: Api, label: object, message: str) -> None:
    with api.as_() as client:
        answer = client.post("/v1/services/credit/labels", json={"labels": [{"request_id": "r1", "label": label}]})
        nul_id = client.post("/v1/services/credit/labels", json={"labels": [{"request_id": "r\x00", "label": 1}]})
    assert answer.status_code == 422 and message in answer.json()["message"]
    assert nul_id.status_code == 422 and nul_id.json()["errors"][0]["field"] == "labels[0].request_id"


def test_host_samples_refuse_text_no_store_can_hold(api: Api) -> None:
    surrogate = b'{"samples": [{"metrics": {"cpu\\ud800": 1.0}}]}'
    with api.as_() as client:
        lone = client.post("/v1/hosts/node-1/samples", content=surrogate, headers={"content-type": "application/json"})
        nul = client.post("/v1/hosts/node-1/samples", json={"samples": [{"name": "gpu\x000", "metrics": {"a": 1}}]})
    assert lone.status_code == 400 and "not valid JSON" in lone.json()["message"]
    assert nul.status_code == 422 and nul.json()["errors"][0]["field"] == "samples[0].name"


def test_a_service_target_with_a_nul_is_refused(api: Api) -> None:
    with api.as_() as client:
        answer = client.post("/v1/services", json={"name": "nul", "target": "y\x00"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "target"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/services/cre%00dit", {}, "service"),
        ("/v1/services/cre%00dit/stats", {}, "service"),
        ("/v1/alerts", {"service": "a\x00"}, "service"),
        ("/v1/webhooks/deliveries", {"event_id": "a\x00"}, "event_id"),
    ],
)
def test_path_and_query_text_with_a_nul_is_a_422(api: Api, path: str, params: dict[str, str], field: str) -> None:
    with api.as_() as client:
        answer = client.get(path, params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field


def test_a_reference_nested_1000_deep_is_refused(api: Api) -> None:
    body = b'{"records": [{"age": ' + b"[" * 1000 + b"]" * 1000 + b"}]}"
    with api.as_() as client:
        answer = client.post(
            "/v1/services/credit/reference", content=body, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 422 and "nested at most 32 levels deep" in answer.json()["message"]


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"name": "age", "drift_method": "bogus"}, "expected a stattest for numerical features, one of"),
        ({"name": "age", "drift_method": "x" * 1_000_000}, "at most 100 characters"),
        ({"name": "city", "type": "categorical", "drift_method": "ks"}, "expected a stattest for categorical"),
        ({"name": "age", "drift_threshold": 1e300}, "less than or equal to 1000000"),
    ],
)
def test_registration_validates_features_like_the_config(api: Api, feature: dict[str, object], message: str) -> None:
    with api.as_() as client:
        answer = client.post("/v1/services", json={"name": "drifty", "features": [feature]})
    assert answer.status_code == 422, answer.text[:300]
    assert answer.json()["errors"][0]["field"].startswith("features[0]") and message in answer.json()["message"]


def test_an_unknown_service_is_a_404_that_lists_no_other_service(api: Api) -> None:
    with api.as_("ingest") as client:
        answer = client.post("/v1/services/ghost/predictions", json={"records": [_record()]})
    assert answer.status_code == 404 and "unknown service 'ghost'" in answer.json()["message"]
    assert "secret-project" not in answer.text and "credit" not in answer.text


@pytest.mark.parametrize("version", [10**30, "1" * 30, 0, "3a", True])
def test_promote_refuses_a_version_mlflow_cannot_hold(api: Api, version: object) -> None:
    with api.as_("operator") as client:
        answer = client.post("/v1/services/credit/promote", json={"version": version})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "version" and "from 1 to 2147483647" in answer.json()["message"]


def test_a_4xx_never_carries_another_librarys_message(api: Api) -> None:
    corrupt = b"PAR1" + b"\x00" * 64
    with api.as_() as client:
        answer = client.post(
            "/v1/services/credit/reference", content=corrupt, headers={"content-type": "application/vnd.apache.parquet"}
        )
    assert answer.status_code == 422, answer.text
    body = json.dumps(answer.json())
    assert "expected a readable Parquet file" in body and "details in the server log" in body
    assert "magic bytes" not in body.lower() and "arrow" not in body.lower()


def test_a_1mb_key_is_refused_and_named_briefly(api: Api) -> None:
    with api.as_("operator") as client:
        answer = client.post("/v1/silences", json={"matchers": {"k" * 1_000_000: "v"}, "duration": "1h"})
    assert answer.status_code == 422 and "at most 200 characters" in answer.json()["message"]
    assert len(answer.content) < 2000


def test_a_reference_keeps_long_text_and_refuses_what_no_store_can_hold(api: Api) -> None:
    with api.as_() as client:
        client.post("/v1/services", json={"name": "notes", "features": [{"name": "note", "type": "text"}]})
        long_text = client.post("/v1/services/notes/reference", json={"records": [{"note": "word " * 2000}] * 3})
        too_big = client.post("/v1/services/notes/reference", json={"records": [{"note": 2**64}]})
        nul = client.post("/v1/services/notes/reference", json={"records": [{"note": "a\x00"}]})
    assert long_text.status_code == 200, long_text.text[:300]
    assert too_big.status_code == 422 and "integer from -2**63" in too_big.json()["message"]
    assert nul.status_code == 422 and nul.json()["errors"][0]["field"] == "records[0].note"
