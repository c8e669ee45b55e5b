"""``POST /v1/cloudevents``: KServe's InferenceLogger events, sent by the ``cloudevents`` SDK, against a real server.

KServe's logger is a Go sidecar of a Kubernetes InferenceService (``kserve/agent``); it
cannot run here, so the CloudEvents Python SDK is the sender: it encodes events by the same
HTTP binding (binary mode with percent-encoded ``ce-*`` headers, as the logger's Go SDK
does; structured mode) with the attributes the logger sets (``ce-type``
``org.kubeflow.serving.inference.request`` / ``.response``, one ``ce-id`` for both,
``ce-inferenceservicename``, ``ce-namespace``, ``ce-component``, ``ce-endpoint``; see
``pkg/logger/worker.go`` in kserve/kserve), and the bodies are what KServe's V1 and V2
protocols carry.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import create_engine, text

from monitor.cloudevents.events import REQUEST, RESPONSE, InferenceEvent
from monitor.cloudevents.pairing import Outcome, Pairing
from monitor.config import CloudEventsConfig
from monitor.ingest import Ingestor
from monitor.records import Feature
from monitor.store import Store
from tests.conftest import RunningServer, free_port, start_server

FEATURES = [{"name": "sepal_length"}, {"name": "sepal_width"}, {"name": "petal_length"}, {"name": "petal_width"}]
V1_REQUEST = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
V1_RESPONSE = {"predictions": [1, 2]}
V2_REQUEST = {
    "id": "ignored",
    "inputs": [
        {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}
    ],
}
V2_RESPONSE = {
    "model_name": "iris",
    "model_version": "v3",
    "id": "ignored",
    "outputs": [{"name": "output-0", "shape": [2], "datatype": "INT32", "data": [1, 2]}],
}


def event(kind: str, data: Any, event_id: str, isvc: str, **extensions: str) -> CloudEvent:
    """An event as KServe's logger makes it for ``isvc``'s predictor."""
    attributes = {
        "type": REQUEST if kind == "request" else RESPONSE,
        "source": "http://localhost:9081/",
        "id": event_id,
        "inferenceservicename": isvc,
        "namespace": "default",
        "component": "predictor",
        "endpoint": "default",
        **extensions,
    }
    return CloudEvent(attributes=attributes, data=data)


def send(client: httpx.Client, ce: CloudEvent, mode: str = "binary") -> httpx.Response:
    message = ce_http.to_binary_event(ce) if mode == "binary" else ce_http.to_structured_event(ce)
    return client.post("/v1/cloudevents", headers=message.headers, content=message.body)


def stored(server: RunningServer, service: str) -> dict[str, dict[str, Any]]:
    """The predictions of ``service`` by request id, read from the store."""
    engine = create_engine(server.store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    query = text(
        "SELECT p.request_id, p.features, p.prediction, p.model_version FROM predictions p "
        "JOIN services s ON s.id = p.service_id WHERE s.name = :name"
    )
    with engine.connect() as conn:
        rows = conn.execute(query, {"name": service}).all()
    engine.dispose()
    return {
        r.request_id: {
            "features": json.loads(r.features),
            "prediction": json.loads(r.prediction),
            "version": r.model_version,
        }
        for r in rows
    }


def waiting(server: RunningServer, service: str) -> int:
    """How many halves of ``service`` the store holds."""
    engine = create_engine(server.store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    query = text("SELECT count(*) FROM cloudevent_halves h JOIN services s ON s.id = h.service_id WHERE s.name = :name")
    with engine.connect() as conn:
        found = int(conn.execute(query, {"name": service}).scalar_one())
    engine.dispose()
    return found


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ce_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server per backend for the module; each test registers services of its own."""
    workdir = tmp_path_factory.mktemp("cloudevents")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'mlwatch.db'}"
        yield from _serving(workdir, url)
        return
    base = request.getfixturevalue("postgres_server")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield from _serving(workdir, f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _serving(workdir: Path, url: str) -> Iterator[RunningServer]:
    Store.open(url, migrate=True).close()
    mapping = json.dumps({"services": {"team-a/sklearn-iris": "iris-mapped"}})
    running = start_server(workdir, url, {"MLWATCH_CLOUDEVENTS": mapping})
    yield running
    running.stop()


@pytest.fixture
def service(ce_server: RunningServer) -> str:
    """A service registered with the four iris features, named as its InferenceService."""
    name = f"iris-{uuid.uuid4().hex[:8]}"
    with ce_server.client() as client:
        assert client.post("/v1/services", json={"name": name, "features": FEATURES}).status_code == 200
    return name


def test_binary_request_then_response_is_one_prediction_per_instance_named_by_the_schema(
    ce_server: RunningServer, service: str
) -> None:
    with ce_server.client() as client:
        first = send(client, event("request", V1_REQUEST, "req-1", service))
        assert first.status_code == 200 and first.json() == {"accepted": 0, "duplicates": 0, "pending": 1}
        assert stored(ce_server, service) == {}
        second = send(client, event("response", V1_RESPONSE, "req-1", service))
    assert second.status_code == 200 and second.json() == {"accepted": 2, "duplicates": 0, "pending": 0}
    found = stored(ce_server, service)
    assert set(found) == {"req-1/0", "req-1/1"}
    assert found["req-1/1"]["features"] == {
        "sepal_length": 6.0,
        "sepal_width": 3.4,
        "petal_length": 4.5,
        "petal_width": 1.6,
    }
    assert [found[f"req-1/{i}"]["prediction"] for i in range(2)] == [1, 2]


def test_structured_v2_response_before_its_request_pairs_all_the_same(ce_server: RunningServer, service: str) -> None:
    with ce_server.client() as client:
        first = send(client, event("response", V2_RESPONSE, "req-2", service), "structured")
        assert first.json() == {"accepted": 0, "duplicates": 0, "pending": 1}
        second = send(client, event("request", V2_REQUEST, "req-2", service), "structured")
    assert second.json() == {"accepted": 2, "duplicates": 0, "pending": 0}
    found = stored(ce_server, service)
    assert found["req-2/0"] == {
        "features": {"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4},
        "prediction": 1,
        "version": "v3",
    }


def test_a_single_named_instance_keeps_its_names_and_the_ce_id_as_request_id(
    ce_server: RunningServer, service: str
) -> None:
    instance = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    with ce_server.client() as client:
        send(client, event("request", {"instances": [instance]}, "one", service))
        send(client, event("response", {"predictions": [0]}, "one", service))
    assert stored(ce_server, service) == {"one": {"features": instance, "prediction": 0, "version": None}}


def test_a_batch_of_structured_events_pairs_within_the_batch(ce_server: RunningServer, service: str) -> None:
    bodies = [
        json.loads(ce_http.to_structured_event(event(kind, data, "in-batch", service)).body)
        for kind, data in (("request", V1_REQUEST), ("response", V1_RESPONSE))
    ]
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    with ce_server.client() as client:
        answer = client.post("/v1/cloudevents", headers=headers, content=json.dumps(bodies))
    assert answer.json() == {"accepted": 2, "duplicates": 0, "pending": 0}
    assert set(stored(ce_server, service)) == {"in-batch/0", "in-batch/1"}


def test_resent_events_store_nothing_twice(ce_server: RunningServer, service: str) -> None:
    request, response = event("request", V1_REQUEST, "again", service), event("response", V1_RESPONSE, "again", service)
    with ce_server.client() as client:
        assert send(client, request).json()["pending"] == 1
        assert send(client, request).json() == {"accepted": 0, "duplicates": 0, "pending": 1}  # still one half held
        assert send(client, response).json()["accepted"] == 2
        assert send(client, response).json() == {"accepted": 0, "duplicates": 2, "pending": 0}
        assert send(client, request, "structured").json() == {"accepted": 0, "duplicates": 2, "pending": 0}
        pending = client.get("/metrics").text
    assert len(stored(ce_server, service)) == 2
    assert waiting(ce_server, service) == 0
    assert f'mlwatch_cloudevents_pending{{service="{service}"}} 1' not in pending


def test_halves_sent_at_once_from_two_threads_all_pair(ce_server: RunningServer, service: str) -> None:
    """Whichever half is read last sees both (``monitor.cloudevents.pairing``): none is left waiting."""
    ids = [f"race-{i}" for i in range(40)]

    def sender(kind: str, data: dict[str, Any]) -> list[dict[str, int]]:
        with ce_server.client() as client:
            return [send(client, event(kind, data, i, service)).json() for i in ids]

    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(sender, "request", V1_REQUEST), pool.submit(sender, "response", V1_RESPONSE)]
        answers = [answer for future in running for answer in future.result()]
    assert len(stored(ce_server, service)) == 2 * len(ids)
    assert sum(a["accepted"] for a in answers) == 2 * len(ids)
    assert waiting(ce_server, service) == 0


def test_the_service_comes_from_the_configured_mapping_by_namespace(ce_server: RunningServer) -> None:
    with ce_server.client() as client:
        assert client.post("/v1/services", json={"name": "iris-mapped", "features": FEATURES}).status_code == 200
        send(client, event("request", V1_REQUEST, "mapped", "sklearn-iris", namespace="team-a"))
        answer = send(client, event("response", V1_RESPONSE, "mapped", "sklearn-iris", namespace="team-a"))
    assert answer.json()["accepted"] == 2
    assert set(stored(ce_server, "iris-mapped")) == {"mapped/0", "mapped/1"}


def test_a_waiting_half_is_counted_in_metrics(ce_server: RunningServer, service: str) -> None:
    with ce_server.client() as client:
        send(client, event("response", V1_RESPONSE, "alone", service))
        body = client.get("/metrics").text
    assert f'mlwatch_cloudevents_pending{{service="{service}"}} 1' in body
    assert f'mlwatch_cloudevents_expired_total{{service="{service}"}} 0' in body


def _binary(
    service: str, data: bytes = b'{"instances": [[1, 2, 3, 4]]}', **headers: str
) -> tuple[dict[str, str], bytes]:
    message = ce_http.to_binary_event(event("request", {}, f"bad-{uuid.uuid4().hex[:6]}", service))
    return {**message.headers, **headers}, data


BAD = [
    ("no ce-* headers at all", "ce-*", {}, b"{}", 422, "ce-id: missing: expected a binary-mode CloudEvent"),
    ("no ce-id", "ce-id", {}, None, 422, "ce-id: Field required"),
    ("another spec version", None, {"ce-specversion": "0.3"}, None, 422, "ce-specversion: Input should be '1.0'"),
    ("an unknown ce-type", None, {"ce-type": "com.example.other"}, None, 422, "ce-type: Input should be"),
    ("a bad ce-time", None, {"ce-time": "yesterday"}, None, 422, "ce-time: "),
    ("a NUL in ce-id", None, {"ce-id": "a%00b"}, None, 422, "ce-id: "),
    ("no InferenceService", "ce-inferenceservicename", {}, None, 422, "ce-inferenceservicename: missing"),
    ("an unknown service", None, {"ce-inferenceservicename": "nope"}, None, 404, "map InferenceService 'nope'"),
    ("a body that is not JSON", None, {}, b"{not json", 422, "data: expected a JSON body, not valid JSON at line 1"),
    ("a NaN", None, {}, b'{"instances": [[1, NaN, 3, 4]]}', 422, "NaN and Infinity are not JSON"),
    ("an empty body", None, {}, b"", 422, "data: expected the KServe V1 or V2 body"),
    ("neither V1 nor V2", None, {}, b'{"dataframe_split": {"data": [[1]]}}', 422, "data: expected a KServe V1 request"),
    (
        "a nested feature value",
        None,
        {},
        b'{"instances": [{"sepal_length": {"b": 1}}]}',
        422,
        "data[0].features.sepal_length: expected a number",
    ),
    (
        "a NUL in a feature value",
        None,
        {},
        b'{"instances": [{"sepal_length": "a\\u0000"}]}',
        422,
        "data[0].features.sepal_length",
    ),
    ("a feature of no schema", None, {}, b'{"instances": [{"colour": 1}]}', 422, "not a registered feature"),
    ("too few positional values", None, {}, b'{"instances": [[1, 2]]}', 422, "data[0].features.f0"),
    ("a number past a double", None, {}, b'{"instances": [[1, 2, 3, 1e999]]}', 422, "data: expected a JSON body"),
]


@pytest.mark.parametrize(("case", "drop", "headers", "body", "status", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_events_get_a_4xx_that_names_what_is_wrong(
    ce_server: RunningServer,
    service: str,
    case: str,
    drop: str | None,
    headers: dict[str, str],
    body: bytes | None,
    status: int,
    message: str,
) -> None:
    sent, data = _binary(service, **headers)
    sent = {} if drop == "ce-*" else {k: v for k, v in sent.items() if k != drop}
    with ce_server.client() as client:
        answer = client.post("/v1/cloudevents", headers=sent, content=data if body is None else body)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["message"]
    assert stored(ce_server, service) == {}


def test_a_response_whose_count_differs_from_its_request_is_refused_and_the_request_kept(
    ce_server: RunningServer, service: str
) -> None:
    with ce_server.client() as client:
        send(client, event("request", V1_REQUEST, "short", service))
        refused = send(client, event("response", {"predictions": [1]}, "short", service))
        assert refused.status_code == 422
        assert "the response has 1 prediction(s) for the 2 instance(s)" in refused.json()["message"]
        assert send(client, event("response", V1_RESPONSE, "short", service)).json()["accepted"] == 2


def test_a_bad_prediction_or_probability_is_refused_before_it_is_kept(ce_server: RunningServer, service: str) -> None:
    bad = {"predictions": [{"prediction": 1, "probabilities": [0.5, 7.0]}]}
    with ce_server.client() as client:
        answer = send(client, event("response", bad, "bad-probabilities", service))
        metrics = client.get("/metrics").text
    assert answer.status_code == 422 and "data[0].probabilities" in answer.json()["message"]
    assert f'mlwatch_cloudevents_pending{{service="{service}"}}' not in metrics


def test_events_need_an_ingest_token_before_anything_is_read(ce_server: RunningServer, service: str) -> None:
    message = ce_http.to_binary_event(event("request", V1_REQUEST, "no-token", service))
    anonymous = httpx.post(f"{ce_server.url}/v1/cloudevents", headers=message.headers, content=b"{not json")
    assert anonymous.status_code == 401
    with ce_server.client() as admin:
        viewer = admin.post("/v1/tokens", json={"role": "viewer", "name": "v"}).json()["token"]
    with ce_server.client(viewer) as client:
        assert client.post("/v1/cloudevents", headers=message.headers, content=message.body).status_code == 403


def test_an_oversized_event_is_refused_with_413(tmp_path: Path, sqlite_url: str) -> None:
    small = start_server(tmp_path, sqlite_url, {"MLWATCH_MAX_BODY_BYTES": "4096"})
    try:
        with small.client() as client:
            client.post("/v1/services", json={"name": "iris", "features": FEATURES})
            huge = {"instances": [[1.0, 2.0, 3.0, 4.0]] * 1000}
            answer = send(client, event("request", huge, "huge", "iris"))
    finally:
        small.stop()
    assert answer.status_code == 413


def test_a_restart_between_the_two_halves_loses_nothing(tmp_path: Path, store_url: str) -> None:
    Store.open(store_url, migrate=True).close()
    (tmp_path / "a").mkdir()
    first = start_server(tmp_path / "a", store_url)
    try:
        with first.client() as client:
            client.post("/v1/services", json={"name": "iris", "features": FEATURES})
            assert send(client, event("request", V2_REQUEST, "across", "iris")).json()["pending"] == 1
    finally:
        first.stop()
    (tmp_path / "b").mkdir()
    second = start_server(tmp_path / "b", store_url)
    try:
        with second.client() as client:
            assert send(client, event("response", V2_RESPONSE, "across", "iris")).json()["accepted"] == 2
    finally:
        second.stop()
    assert set(stored(second, "iris")) == {"across/0", "across/1"}


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _half(kind: str, event_id: str, data: Any) -> InferenceEvent:
    return InferenceEvent(kind, event_id, "iris", "default", "predictor", 1_000.0, data)


def test_a_half_whose_pair_never_comes_expires_and_is_counted(store: Store) -> None:
    store.upsert_service(
        "iris", task="classification", features=tuple(Feature(f["name"], "numerical") for f in FEATURES)
    )
    clock = Clock(1_000.0)
    pairing = Pairing(store, Ingestor(store), CloudEventsConfig(pending_ttl=60), clock=clock)
    assert pairing.receive(_half("response", "late", V1_RESPONSE)) == Outcome(pending=1)
    clock.now += 61
    assert pairing.receive(_half("request", "other", V1_REQUEST)) == Outcome(pending=1)  # sweeps "late"
    (counts,) = store.half_counts(clock.now)
    assert (counts.pending, counts.expired) == (1, 1)
    assert pairing.receive(_half("request", "late", V1_REQUEST)) == Outcome(pending=1)  # its response is gone
    clock.now += 61
    (counts,) = store.half_counts(clock.now)
    assert (counts.pending, counts.expired) == (0, 3)  # two expired but not swept yet count too


def test_the_benchmark_runs_and_reports_both_rates() -> None:
    from benchmarks import bench_cloudevents

    baseline, rate = bench_cloudevents.run(inferences=8)
    assert baseline.value > 0 and rate.value > 0 and rate.baseline == baseline.value


KSERVE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-kserve" / "bin" / "python"


KSERVE_BODY = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


@pytest.fixture(scope="module")
def kserve_reply() -> dict[str, Any]:
    """What the real KServe server (``tests/collectors/kserve_iris.py``) answers to ``KSERVE_BODY``."""
    from tests.collectors.mlflow_serving import running

    if not KSERVE_PYTHON.exists():
        pytest.skip("needs KServe's environment: make kserve")
    port = free_port()
    script = Path(__file__).parents[1] / "collectors" / "kserve_iris.py"
    command = [str(KSERVE_PYTHON), str(script), "--http_port", str(port)]
    with running(command, dict(os.environ), f"http://127.0.0.1:{port}/v1/models/iris", 120):
        reply: dict[str, Any] = httpx.post(f"http://127.0.0.1:{port}/v1/models/iris:predict", json=KSERVE_BODY).json()
    return reply


def test_what_a_real_kserve_server_answered_pairs_into_its_classes_and_scores(
    ce_server: RunningServer, service: str, kserve_reply: dict[str, Any]
) -> None:
    """The bodies KServe's logger would wrap: a V1 request, and the real KServe server's reply to it."""
    with ce_server.client() as client:
        send(client, event("request", KSERVE_BODY, "kserve-real", service))
        assert send(client, event("response", kserve_reply, "kserve-real", service)).json()["accepted"] == 2
    found = stored(ce_server, service)
    classes = [p["classes"] for p in kserve_reply["predictions"]]
    assert [found[f"kserve-real/{i}"]["prediction"] for i in range(2)] == classes
    assert found["kserve-real/1"]["features"]["petal_length"] == 5.2


def test_the_cloudevents_section_is_read_with_a_duration_and_a_bad_service_is_refused(tmp_path: Path) -> None:
    from monitor.errors import ConfigError
    from monitor.settings import load_settings

    good = tmp_path / "good.yaml"
    good.write_text("cloudevents:\n  pending_ttl: 10m\n  services: {sklearn-iris: iris, team-a/fraud: fraud}\n")
    settings = load_settings(good, environ={})
    assert settings.cloudevents.pending_ttl == 600
    assert settings.cloudevents.services == {"sklearn-iris": "iris", "team-a/fraud": "fraud"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("cloudevents:\n  services: {sklearn-iris: 'not a name'}\n")
    with pytest.raises(ConfigError, match=r"cloudevents\.services\.sklearn-iris"):
        load_settings(bad, environ={})
