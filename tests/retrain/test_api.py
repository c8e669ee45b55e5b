"""The retrain, job, promote, rollback and models endpoints over a real server process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.store import Store
from retrain.registry import make_client
from tests.conftest import RunningServer, free_port, start_server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    work = tmp_path_factory.mktemp("api")
    mlflow_uri = f"sqlite:///{work / 'mlflow.db'}"
    running = start_server(work, f"sqlite:///{work / 'mlwatch.db'}", {"MLWATCH_MLFLOW_TRACKING_URI": mlflow_uri})
    with running.client() as client:
        body = {"name": "credit", "task": "classification", "target": "label", "features": [{"name": "x1"}]}
        assert client.post("/v1/services", json=body).status_code == 200
    yield running, mlflow_uri
    running.stop()


@pytest.fixture
def client(api: tuple[RunningServer, str]) -> Iterator[httpx.Client]:
    with api[0].client() as opened:
        yield opened


def _error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    return str(answer.json()["message"])


def test_retrain_refuses_unknown_service_bad_mode_and_extra_fields(client: httpx.Client) -> None:
    assert "unknown service 'nope'" in _error(client.post("/v1/services/nope/retrain", json={}), 404)
    message = _error(client.post("/v1/services/credit/retrain", json={"mode": "boost"}), 422)
    assert message.startswith("mode:") and "'retrain' or 'fine_tune'" in message
    assert "speed" in _error(client.post("/v1/services/credit/retrain", json={"speed": 2}), 422)


def test_a_viewer_may_read_jobs_but_not_retrain_or_promote(api: tuple[RunningServer, str]) -> None:
    running, _ = api
    store = Store.open(running.store_url)
    viewer = store.create_token("viewer")
    store.close()
    with running.client(viewer) as client:
        assert "operator" in _error(client.post("/v1/services/credit/retrain", json={}), 403)
        assert "operator" in _error(client.post("/v1/services/credit/promote", json={"version": "1"}), 403)
        assert client.get("/v1/services/credit/models").status_code == 200


def test_jobs_are_reported_and_cancelled_once(client: httpx.Client) -> None:
    job_id = client.post("/v1/services/credit/retrain", json={"mode": "fine_tune"}).json()["job_id"]
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert (job["status"], job["params"]["mode"], job["params"]["trigger"]) == ("queued", "fine_tune", "manual")
    cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert "already cancelled" in _error(client.post(f"/v1/jobs/{job_id}/cancel"), 409)
    assert "unknown job 99999" in _error(client.get("/v1/jobs/99999"), 404)
    assert "job_id" in _error(client.get("/v1/jobs/abc"), 422)


def test_promote_refuses_unknown_and_malformed_versions(client: httpx.Client) -> None:
    assert "unknown version '7' of model 'credit'" in _error(
        client.post("/v1/services/credit/promote", json={"version": "7"}), 404
    )
    for huge in (10**30, str(10**30), "1e30"):
        message = _error(client.post("/v1/services/credit/promote", json={"version": huge}), 422)
        assert message.startswith("version: expected") and "from 1 to 2147483647" in message
        assert "SQLite" not in message
    assert _error(client.post("/v1/services/credit/promote", json={"version": "v7"}), 422).startswith(
        "version: expected"
    )
    assert "version" in _error(client.post("/v1/services/credit/promote", json={}), 422)
    assert "unknown service" in _error(client.post("/v1/services/nope/promote", json={"version": "1"}), 404)


def test_promote_and_rollback_refuse_a_reason_that_is_not_short_text(client: httpx.Client) -> None:
    for path, body in (("promote", {"version": "1"}), ("rollback", {})):
        for reason in (7, "x" * 2001):
            message = _error(client.post(f"/v1/services/credit/{path}", json={**body, "reason": reason}), 422)
            assert message.startswith("reason: ")
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"reason"} <= set(schema["VersionIn"]["properties"]) & set(schema["RollbackIn"]["properties"])
    assert "claimed_by" in schema["JobOut"]["properties"]


def test_a_claimed_job_names_its_worker(api: tuple[RunningServer, str], client: httpx.Client) -> None:
    job_id = client.post("/v1/services/credit/retrain", json={}).json()["job_id"]
    store = Store.open(api[0].store_url)
    try:
        claimed = store.claim_job("w7")
        assert claimed is not None and claimed.id == job_id
        assert client.get(f"/v1/jobs/{job_id}").json()["claimed_by"] == "w7"
        store.finish_job(job_id, "failed", error="stopped by the test")
    finally:
        store.close()


def test_promote_rollback_and_models_view(api: tuple[RunningServer, str], client: httpx.Client, tmp_path: Path) -> None:
    mlflow = make_client(api[1])
    mlflow.create_registered_model("credit")
    for _ in range(2):
        mlflow.create_model_version("credit", str(tmp_path))
    assert "no 'previous' version" in _error(client.post("/v1/services/credit/rollback"), 409)
    assert client.post("/v1/services/credit/promote", json={"version": 1}).json()["champion"] == "1"
    promoted = client.post("/v1/services/credit/promote", json={"version": "2"}).json()
    assert (promoted["champion"], promoted["previous"]) == ("2", "1")
    assert "target ('previous') is 1" in _error(client.post("/v1/services/credit/rollback", json={"version": "2"}), 409)
    assert client.post("/v1/services/credit/rollback", json={"version": "1"}).json()["champion"] == "1"
    models = client.get("/v1/services/credit/models").json()
    assert (models["champion"], models["previous"], models["model_name"]) == ("1", "2", "credit")
    assert [v["version"] for v in models["versions"]] == ["2", "1"]
    assert models["versions"][1]["aliases"] == ["champion"]
    assert [h["actor"] for h in models["history"]] == ["bootstrap"] * 5


def test_the_api_does_not_import_mlflow_at_start_up() -> None:
    code = "import sys; import monitor.server.app, retrain.actions; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_an_unreachable_mlflow_is_a_503_that_says_so(tmp_path: Path) -> None:
    """Nothing listens at the tracking URI: registry calls answer 503 with Retry-After within the
    server's short MLflow retry budget, not a 400 after MLflow's default of minutes."""
    mlflow_uri = f"http://127.0.0.1:{free_port()}"
    env = {"MLWATCH_MLFLOW_TRACKING_URI": mlflow_uri}
    running = start_server(tmp_path, f"sqlite:///{tmp_path / 'mlwatch.db'}", env)
    try:
        with running.client() as client:
            body = {"name": "credit", "task": "classification", "model_name": "credit", "features": [{"name": "x1"}]}
            assert client.post("/v1/services", json=body).status_code == 200
            for answer in (
                client.get("/v1/services/credit/models"),
                client.post("/v1/services/credit/promote", json={"version": "1"}),
            ):
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "unavailable"
                assert "MLflow cannot be reached" in answer.json()["message"]
                assert answer.headers["Retry-After"] == "30"
    finally:
        running.stop()
