"""The ingest/query API over a real server process on a loopback port."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import RunningServer

FEATURES = [{"name": "age"}, {"name": "city", "type": "categorical"}, {"name": "note", "type": "text"}]


def _register(client: httpx.Client, name: str = "credit") -> None:
    response = client.post("/v1/services", json={"name": name, "task": "classification", "features": FEATURES})
    assert response.status_code == 200, response.text


def _record(i: int, **overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "request_id": f"r{i}",
        "timestamp": time.time(),
        "features": {"age": 30 + i, "city": "paris", "note": "ok"},
        "prediction": 1,
        "probabilities": [0.2, 0.8],
        "latency_ms": 5.0,
        "model_version": "1",
    }
    record.update(overrides)
    return record


def _count(client: httpx.Client, service: str = "credit") -> int:
    return int(client.get(f"/v1/services/{service}").json()["predictions_last_hour"])


def test_healthz_needs_no_token(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}


def test_batch_is_stored_and_resending_it_adds_nothing(server: RunningServer) -> None:
    with server.client() as client:
        _register(client)
        batch = {"records": [_record(i) for i in range(20)]}
        assert client.post("/v1/services/credit/predictions", json=batch).json() == {"accepted": 20, "duplicates": 0}
        assert client.post("/v1/services/credit/predictions", json=batch).json() == {"accepted": 0, "duplicates": 20}
        assert _count(client) == 20


def test_stats_report_latency_percentiles_per_bucket(server: RunningServer) -> None:
    with server.client() as client:
        _register(client)
        records = [_record(i, latency_ms=float(i + 1)) for i in range(100)]
        client.post("/v1/services/credit/predictions", json={"records": records})
        body = client.get("/v1/services/credit/stats", params={"bucket": 3600}).json()
    (bucket,) = body["buckets"]
    assert bucket["count"] == 100
    assert bucket["latency_p95_ms"] == pytest.approx(95, rel=0.13)


def test_labels_and_host_samples_are_accepted(server: RunningServer) -> None:
    with server.client() as client:
        _register(client)
        client.post("/v1/services/credit/predictions", json={"records": [_record(1)]})
        labels = client.post("/v1/services/credit/labels", json={"labels": [{"request_id": "r1", "label": 1}]})
        samples = client.post("/v1/hosts/node-1/samples", json={"samples": [{"metrics": {"cpu_percent": 5.5}}]})
    assert labels.json()["accepted"] == 1 and samples.json()["accepted"] == 1


BAD_BODIES = [
    ("malformed JSON", b'{"records": [', 400, "not valid JSON"),
    (
        "NaN feature",
        b'{"records": [{"features": {"age": NaN}}]}',
        422,
        r"records\[0\]\.features\.age: expected a finite",
    ),
    ("infinite latency", b'{"records": [{"latency_ms": Infinity}]}', 422, r"records\[0\]\.latency_ms"),
    ("wrong type", json.dumps({"records": [{"latency_ms": "slow"}]}).encode(), 422, r"records\[0\]\.latency_ms"),
    ("missing field", b"{}", 422, r"records: Field required"),
    ("unknown field", json.dumps({"records": [{"feature": {}}]}).encode(), 422, r"records\[0\]\.feature"),
    ("unregistered feature", json.dumps({"records": [{"features": {"zip": 1}}]}).encode(), 422, "not a registered"),
    (
        "feature of wrong type",
        json.dumps({"records": [{"features": {"age": "old"}}]}).encode(),
        422,
        "expected a number",
    ),
    ("negative latency", json.dumps({"records": [{"latency_ms": -1}]}).encode(), 422, "greater than or equal to 0"),
    ("bad status", json.dumps({"records": [{"status": "meh"}]}).encode(), 422, r"records\[0\]\.status"),
    ("empty batch", json.dumps({"records": []}).encode(), 422, "at least 1 item"),
    ("repeated request id", json.dumps({"records": [_record(1), _record(1)]}).encode(), 422, r"repeats records\[0\]"),
    ("not an object", b"[1, 2]", 422, "should be an object|valid dictionary"),
]


@pytest.mark.parametrize(("case", "body", "status", "message"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_batch_is_refused_with_a_message_and_nothing_is_lost(
    server: RunningServer, case: str, body: bytes, status: int, message: str
) -> None:
    with server.client() as client:
        _register(client)
        client.post("/v1/services/credit/predictions", json={"records": [_record(100)]})
        mixed = client.post(
            "/v1/services/credit/predictions", content=body, headers={"content-type": "application/json"}
        )
        assert mixed.status_code == status, mixed.text
        assert mixed.json()["message"] and __import__("re").search(message, mixed.json()["message"]), mixed.json()
        assert _count(client) == 1  # the earlier batch is intact, nothing of the bad one stored


def test_a_bad_record_rejects_its_whole_batch(server: RunningServer) -> None:
    with server.client() as client:
        _register(client)
        batch = {"records": [_record(1), _record(2), _record(3, features={"age": "x"})]}
        response = client.post("/v1/services/credit/predictions", json=batch)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "records[2].features.age"
        assert _count(client) == 0


def test_unknown_service_is_a_404_naming_it(server: RunningServer) -> None:
    with server.client() as client:
        response = client.post("/v1/services/ghost/predictions", json={"records": [_record(1)]})
    assert response.status_code == 404
    assert "unknown service 'ghost'" in response.json()["message"]


def test_oversized_body_is_a_413_before_it_is_read(tmp_path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import start_server

    small = start_server(tmp_path, sqlite_url, {"MLWATCH_MAX_BODY_BYTES": "4096"})
    try:
        with small.client() as client:
            _register(client)
            big = {"records": [_record(i) for i in range(100)]}
            response = client.post("/v1/services/credit/predictions", json=big)
            assert response.status_code == 413
            assert "over the limit of 4096 bytes" in response.json()["message"]
            assert _count(client) == 0
    finally:
        small.stop()


def test_chunked_body_over_the_limit_is_refused(tmp_path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import start_server

    small = start_server(tmp_path, sqlite_url, {"MLWATCH_MAX_BODY_BYTES": "4096"})
    try:
        with small.client() as client:
            _register(client)
            payload = json.dumps({"records": [_record(i) for i in range(100)]}).encode()
            chunks = (payload[i : i + 1000] for i in range(0, len(payload), 1000))  # no Content-Length
            response = client.post(
                "/v1/services/credit/predictions", content=chunks, headers={"content-type": "application/json"}
            )
            assert response.status_code == 413
    finally:
        small.stop()


def test_too_many_records_per_batch_is_refused(tmp_path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import start_server

    small = start_server(tmp_path, sqlite_url, {"MLWATCH_MAX_BATCH_RECORDS": "10"})
    try:
        with small.client() as client:
            _register(client)
            response = client.post("/v1/services/credit/predictions", json={"records": [_record(i) for i in range(11)]})
            assert response.status_code == 422
            assert "at most 10 items per batch, got 11" in response.json()["message"]
    finally:
        small.stop()


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "missing Authorization header"),
        ({"Authorization": "Token abc"}, 401, "expected 'Bearer <token>'"),
        ({"Authorization": "Bearer wrong"}, 401, "invalid or revoked token"),
    ],
)
def test_missing_or_wrong_token_is_refused(
    server: RunningServer, headers: dict[str, str], status: int, message: str
) -> None:
    response = httpx.post(
        f"{server.url}/v1/services/credit/predictions", json={"records": [_record(1)]}, headers=headers
    )
    assert response.status_code == status
    assert message in response.json()["message"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_roles_limit_what_a_token_may_do(server: RunningServer) -> None:
    from monitor.store import Store

    store = Store.open(server.store_url)
    ingest, viewer = store.create_token("ingest"), store.create_token("viewer")
    store.close()
    with server.client() as admin:
        _register(admin)
    with server.client(ingest) as client:
        assert client.post("/v1/services/credit/predictions", json={"records": [_record(1)]}).status_code == 200
        forbidden = client.get("/v1/services")
        assert forbidden.status_code == 403 and "viewer, operator, admin" in forbidden.json()["message"]
    with server.client(viewer) as client:
        assert client.get("/v1/services").status_code == 200
        assert client.post("/v1/services/credit/predictions", json={"records": [_record(2)]}).status_code == 403
        assert client.post("/v1/services", json={"name": "x"}).status_code == 403


def test_openapi_schema_is_served(server: RunningServer) -> None:
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/services/{service}/predictions", "/v1/services/{service}/labels", "/v1/hosts/{host}/samples"} <= set(
        paths
    )
