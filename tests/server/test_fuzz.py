"""Property-based fuzzing of every API operation from its OpenAPI schema: no 5xx, ever."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import RunningServer, start_server


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("fuzz")
    running = start_server(workdir, f"sqlite:///{workdir / 'fuzz.db'}")
    headers = {"Authorization": f"Bearer {running.token}"}
    # A real service, so that generated requests for it reach validation and the store.
    features = [{"name": "age"}, {"name": "city", "type": "categorical"}]
    httpx.post(f"{running.url}/v1/services", json={"name": "credit", "features": features}, headers=headers)
    yield running
    running.stop()


def test_no_operation_answers_with_a_server_error(fuzz_server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_server.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    statuses: list[int] = []
    for operation in operations:
        _fuzz(operation, fuzz_server.url, headers, statuses)
    assert len(statuses) >= 5 * len(operations)  # hypothesis really generated traffic
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)


def _fuzz(operation: object, base_url: str, headers: dict[str, str], statuses: list[int]) -> None:
    @given(case=operation.as_strategy())  # type: ignore[attr-defined]
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        service = (case.path_parameters or {}).get("service")
        if isinstance(service, str) and service[:1] in "cC":
            case.path_parameters["service"] = "credit"  # steer part of the traffic to the registered service
        response = case.call(base_url=base_url, headers=headers)
        statuses.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    run()
