"""``mlwatch token create|list|revoke`` on the configured store, and through the API when given one."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.store import Store
from monitor.store.services import hash_token
from tests.conftest import RunningServer


def _mlwatch(tmp_path: Path, *args: str, **env: str | None) -> Result:
    runner = CliRunner()
    config = tmp_path / "mlwatch.yaml"
    config.touch()
    environ = {"MLWATCH_CONFIG": str(config), "MLWATCH_URL": None, "MLWATCH_TOKEN": None, **env}
    return runner.invoke(main, list(args), env=environ, catch_exceptions=False, prog_name="mlwatch")


@pytest.fixture
def local(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    Store.open(sqlite_url).close()
    return {"MLWATCH_STORE_URL": sqlite_url}


def test_token_list_shows_each_token_and_the_store_it_read(tmp_path: Path, local: dict[str, str]) -> None:
    created = _mlwatch(tmp_path, "token", "create", "--role", "viewer", "--name", "grafana", **local)
    token = created.stdout.strip()
    listed = _mlwatch(tmp_path, "token", "list", **local)
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "ROLE", "CREATED", "LAST", "USED", "REVOKED"]
    assert row.split()[:3] == ["1", "grafana", "viewer"] and row.split()[-2:] == ["never", "no"]
    assert f"mlwatch token list: store {local['MLWATCH_STORE_URL']}" in listed.stderr
    assert token not in listed.output and hash_token(token) not in listed.output


def test_token_revoke_on_the_store_refuses_the_token_and_lists_it_revoked(
    tmp_path: Path, local: dict[str, str], sqlite_url: str
) -> None:
    token = _mlwatch(tmp_path, "token", "create", "--role", "ingest", **local).stdout.strip()
    revoked = _mlwatch(tmp_path, "token", "revoke", "1", **local)
    assert revoked.exit_code == 0 and revoked.stdout.strip() == "revoked token 1 (ingest, ingest)"
    assert "store " in revoked.stderr
    assert _mlwatch(tmp_path, "token", "list", **local).stdout.splitlines()[1].endswith("yes")
    store = Store.open(sqlite_url)
    try:
        assert store.token_role(token) is None
    finally:
        store.close()


def test_token_revoke_of_an_unknown_id_fails_naming_the_id(tmp_path: Path, local: dict[str, str]) -> None:
    result = _mlwatch(tmp_path, "token", "revoke", "42", **local)
    assert result.exit_code == 1 and "no API token with id 42" in result.stderr


def test_token_commands_use_the_api_when_given_its_url_and_a_token(tmp_path: Path, server: RunningServer) -> None:
    api = {"MLWATCH_URL": server.url, "MLWATCH_TOKEN": server.token, "MLWATCH_STORE_URL": "sqlite:///nowhere.db"}
    with server.client() as admin:
        made = admin.post("/v1/tokens", json={"role": "operator", "name": "ci"}).json()
    listed = _mlwatch(tmp_path, "token", "list", **api)
    assert listed.exit_code == 0, listed.output
    assert f"API {server.url}" in listed.stderr and listed.stdout.splitlines()[1].split()[:3] == ["1", "ci", "operator"]
    revoked = _mlwatch(tmp_path, "token", "revoke", str(made["id"]), **api)
    assert revoked.exit_code == 0 and revoked.stdout.strip() == "revoked token 1 (ci, operator)"
    with server.client(made["token"]) as client:
        assert client.get("/v1/services").status_code == 401  # the server that revoked it refuses it at once
    denied = _mlwatch(tmp_path, "token", "list", **{**api, "MLWATCH_TOKEN": made["token"]})
    assert denied.exit_code == 1 and "answered 401: invalid or revoked token" in denied.stderr
