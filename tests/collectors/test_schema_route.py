"""``GET /v1/services/{service}/schema``: what the proxy and the SDK read, with an ingest token,
to name positional inputs. Against a real API server."""

from __future__ import annotations

from tests.collectors.conftest import register
from tests.conftest import RunningServer


def _token(api: RunningServer, role: str) -> str:
    with api.client() as client:
        created = client.post("/v1/tokens", json={"role": role})
    created.raise_for_status()
    return str(created.json()["token"])


def test_an_ingest_token_reads_the_features_in_their_registered_order_and_the_target(api: RunningServer) -> None:
    body = {
        "name": "ordered",
        "target": "default",
        "features": [
            {"name": "zeta", "type": "numerical"},
            {"name": "alpha", "type": "categorical"},
            {"name": "mid", "type": "text"},
        ],
    }
    with api.client() as admin:
        admin.post("/v1/services", json=body).raise_for_status()
    with api.client(_token(api, "ingest")) as collector:
        answer = collector.get("/v1/services/ordered/schema")
    assert answer.status_code == 200
    assert answer.json() == {
        "service": "ordered",
        "features": [
            {"name": "zeta", "type": "numerical"},
            {"name": "alpha", "type": "categorical"},
            {"name": "mid", "type": "text"},
        ],
        "target": "default",
    }


def test_an_unknown_service_is_a_404_that_names_no_other_service(api: RunningServer) -> None:
    register(api, "secret-project-x", ["a"])
    with api.client(_token(api, "ingest")) as collector:
        answer = collector.get("/v1/services/nope/schema")
    assert answer.status_code == 404
    assert "'nope'" in answer.json()["message"] and "secret-project-x" not in answer.text


def test_a_viewer_token_and_no_token_are_refused(api: RunningServer) -> None:
    register(api, "guarded", ["a"])
    with api.client(_token(api, "viewer")) as viewer:
        refused = viewer.get("/v1/services/guarded/schema")
    assert refused.status_code == 403 and "ingest" in refused.json()["message"]
    with api.client() as admin:
        assert admin.get("/v1/services/guarded/schema", headers={"Authorization": ""}).status_code == 401
