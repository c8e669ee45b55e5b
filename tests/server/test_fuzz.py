"""Property-based fuzzing of every API operation from its OpenAPI schema, with every role: no 5xx.

Derandomized (a fixed seed per operation and role), so a run here is the same run every
time and fits in ``make test``; ``make fuzz`` runs the long randomized version of this
against SQLite and PostgreSQL (``tests/server/fuzz.py``). The one 5xx on purpose is 503
``unavailable`` with ``Retry-After`` where MLflow cannot be reached (the model operations).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.conftest import RunningServer, start_server

ROLES = ("ingest", "viewer", "operator", "admin")
"""In this order: admin, last, revokes tokens (DELETE /v1/tokens/{id}) that the others use."""
MLFLOW_OPERATIONS = ("/retrain", "/promote", "/rollback", "/models")
"""Paths whose handlers call MLflow and may answer the documented 503 when it cannot be reached."""
EXAMPLES = {"admin": (10, 6), "operator": (3, 2), "viewer": (2, 2), "ingest": (2, 2)}
"""Per operation, (valid, invalid) cases: the admin token reaches every handler; the others
mostly show that authorization comes first, which a few cases establish."""


@dataclass
class Target:
    server: RunningServer
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    from monitor.store import Store

    workdir = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{workdir / 'fuzz.db'}"
    store = Store.open(url, migrate=True)
    tokens = {role: store.create_token(role) for role in ROLES if role != "admin"}
    store.close()
    running = start_server(workdir, url)
    tokens["admin"] = running.token  # the bootstrap token: DELETE /v1/tokens/{id} cannot revoke it
    # A real service, so that generated requests for it reach validation and the store.
    features = [{"name": "age"}, {"name": "city", "type": "categorical"}]
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    httpx.post(f"{running.url}/v1/services", json={"name": "credit", "features": features}, headers=headers)
    yield Target(running, tokens)
    running.stop()


def test_no_operation_answers_with_a_server_error_for_any_role(target: Target) -> None:
    schema = schemathesis.openapi.from_url(f"{target.server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    statuses: dict[str, list[int]] = {role: [] for role in ROLES}
    for role in ROLES:
        for operation in operations:
            for mode, examples in zip(GenerationMode, EXAMPLES[role], strict=True):
                _fuzz(operation, target, role, mode, examples, statuses[role])
    everything = [s for found in statuses.values() for s in found]
    assert len(everything) >= sum(sum(EXAMPLES[r]) for r in ROLES) * len(operations) // 2  # traffic was generated
    assert any(200 <= s < 300 for s in statuses["admin"]) and any(400 <= s < 500 for s in everything)
    assert 403 in statuses["viewer"] and 403 in statuses["ingest"]


def _fuzz(
    operation: object, target: Target, role: str, mode: GenerationMode, examples: int, statuses: list[int]
) -> None:
    label = f"{role} {mode.value} {operation.method} {operation.path}"  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {target.tokens[role]}"}

    @seed(zlib.crc32(label.encode()))
    @given(case=operation.as_strategy(mode))  # type: ignore[attr-defined]
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        service = (case.path_parameters or {}).get("service")
        if isinstance(service, str) and service[:1] in "cC":
            case.path_parameters["service"] = "credit"  # steer part of the traffic to the registered service
        response = case.call(base_url=target.server.url, headers=headers, timeout=120)  # a check imports Evidently
        statuses.append(response.status_code)
        assert_no_server_error(case.path, response.status_code, response.headers, response.text)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise  # an operation with nothing to get wrong (no parameters, no body) has no invalid cases


def assert_no_server_error(path: str, status: int, headers: object, text: str) -> None:
    """No 5xx, but the documented 503 ``unavailable`` (with Retry-After) of the operations that call MLflow."""
    if status < 500:
        return
    documented = status == 503 and path.endswith(MLFLOW_OPERATIONS) and '"unavailable"' in text
    assert documented and "retry-after" in headers, f"{status} from {path}: {text[:500]}"  # type: ignore[operator]
