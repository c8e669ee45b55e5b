"""API tokens: listed with their last use, revoked by id, and refused at once once revoked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.errors import AuthError, NotFound
from monitor.server.auth import REVALIDATE_SECONDS, TokenAuth
from monitor.store import Store
from tests.conftest import RunningServer, start_server


class Ticks:
    """A clock moved by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def test_tokens_are_listed_with_role_and_times_but_never_a_hash(store: Store) -> None:
    listed, plain = store.issue_token("viewer", "grafana")
    store.create_token("ingest")
    tokens = store.list_tokens()
    oldest = tokens[0]
    assert (oldest.id, oldest.name, oldest.role, oldest.revoked) == (listed.id, "grafana", "viewer", False)
    assert [t.name for t in tokens] == ["grafana", "ingest"]
    assert oldest.created_at == pytest.approx(time.time(), abs=60) and oldest.last_used_at is None
    assert not any(hasattr(t, "token_hash") for t in tokens) and store.token_role(plain) == "viewer"


def test_revoking_by_id_refuses_the_token_and_an_unknown_id_is_not_found(store: Store) -> None:
    listed, plain = store.issue_token("operator")
    assert store.revoke_token_id(listed.id).revoked
    assert store.token_access(plain) is None and store.list_tokens()[0].revoked
    assert store.revoke_token_id(listed.id).revoked  # again: no error
    with pytest.raises(NotFound, match=r"no API token with id 999; `mlwatch token list`"):
        store.revoke_token_id(999)


def test_last_use_is_written_at_most_once_a_minute(store: Store) -> None:
    listed, plain = store.issue_token("ingest")
    clock, wall = Ticks(), Ticks(2_000_000.0)
    auth = TokenAuth(store, None, clock=clock, wall=wall)
    auth.authenticate(_bearer(plain))
    assert store.list_tokens()[0].last_used_at == wall.now
    first = wall.now
    for _ in range(20):  # 20 calls over 50 s, the cache read again every few seconds: no second write
        wall.now += 2.5
        clock.now += 2.5
        auth.authenticate(_bearer(plain))
    assert store.list_tokens()[0].last_used_at == first
    wall.now, clock.now = first + 61, clock.now + 11
    auth.authenticate(_bearer(plain))
    assert store.list_tokens()[0].last_used_at == first + 61
    other = TokenAuth(store, None, clock=Ticks(), wall=Ticks(first + 70))  # another replica, 9 s later
    other.authenticate(_bearer(plain))
    assert store.list_tokens()[0].last_used_at == first + 61 and listed.id == store.list_tokens()[0].id


def test_a_token_revoked_through_this_process_is_refused_on_its_next_request(store: Store) -> None:
    listed, plain = store.issue_token("ingest")
    auth = TokenAuth(store, None, clock=Ticks())  # the clock never moves: only the revocation can drop the cache
    assert auth.authenticate(_bearer(plain)).role == "ingest"
    auth.revoke(listed.id)
    with pytest.raises(AuthError, match="invalid or revoked token"):
        auth.authenticate(_bearer(plain))


def test_a_token_revoked_by_another_process_is_refused_after_the_revalidation_interval(store: Store) -> None:
    listed, plain = store.issue_token("ingest")
    clock = Ticks()
    auth = TokenAuth(store, None, clock=clock)
    auth.authenticate(_bearer(plain))
    store.revoke_token_id(listed.id)  # as `mlwatch token revoke` or another replica would
    clock.now += REVALIDATE_SECONDS
    with pytest.raises(AuthError, match="invalid or revoked token"):
        auth.authenticate(_bearer(plain))


@pytest.fixture
def two_servers(tmp_path: Path, store_url: str) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two API server processes over one store, as two replicas behind a load balancer."""
    Store.open(store_url, migrate=True).close()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start_server(tmp_path / "a", store_url)
    try:
        second = start_server(tmp_path / "b", store_url)
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def test_admins_create_list_and_revoke_tokens_through_the_api(server: RunningServer) -> None:
    with server.client() as admin:
        made = admin.post("/v1/tokens", json={"role": "ingest", "name": "batch-job"})
        assert made.status_code == 201, made.text
        created = made.json()
        assert created["role"] == "ingest" and created["token"].startswith("mlw_") and not created["revoked"]
        listed = admin.get("/v1/tokens").json()
        assert [(t["id"], t["name"], t["revoked"]) for t in listed] == [(created["id"], "batch-job", False)]
        assert all("token" not in t and "token_hash" not in t for t in listed)
        missing = admin.delete("/v1/tokens/999")
        assert missing.status_code == 404 and "no API token with id 999" in missing.json()["message"]
        bad = admin.post("/v1/tokens", json={"role": "root"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "role"
    with server.client(created["token"]) as ingest:
        refused = ingest.get("/v1/tokens")
        assert refused.status_code == 403 and "needs one of the roles: admin" in refused.json()["message"]
    with server.client() as admin:
        assert admin.get("/v1/tokens").json()[0]["last_used_at"] is not None


def test_a_revoked_token_is_refused_at_once_by_its_server_and_within_seconds_by_the_other(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    first, second = two_servers
    with first.client() as admin:
        created = admin.post("/v1/tokens", json={"role": "viewer"}).json()
    with first.client(created["token"]) as on_first, second.client(created["token"]) as on_second:
        assert on_first.get("/v1/services").status_code == 200
        assert on_second.get("/v1/services").status_code == 200  # now cached by the other replica
        with first.client() as admin:
            assert admin.delete(f"/v1/tokens/{created['id']}").json()["revoked"] is True
        refused = on_first.get("/v1/services")
        assert refused.status_code == 401 and refused.json()["message"] == "invalid or revoked token"
        _refused_within(on_second, REVALIDATE_SECONDS + 3.0)


def _refused_within(client: httpx.Client, timeout: float) -> None:
    """Return once ``client``'s token is refused; fail if it is still accepted after ``timeout`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if client.get("/v1/services").status_code == 401:
            return
        time.sleep(0.1)
    raise AssertionError(f"the revoked token was still accepted after {timeout}s")
