"""The action commands ask the API, so its roles apply: refusals and an absent server are one line, exit 1."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.commands.api import DEFAULT_URL, endpoint
from monitor.store import Store
from tests.conftest import RunningServer, free_port, start_server
from tests.retrain.scenario import register

ACTIONS = [
    ["retrain", "credit"],
    ["promote", "credit", "1"],
    ["rollback", "credit"],
    ["check", "credit"],
    ["reference", "upload", "ref.csv", "--service", "credit"],
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    """A server with the service ``credit`` and a token of each role."""
    work = tmp_path_factory.mktemp("cli-api")
    store_url = f"sqlite:///{work / 'mlwatch.db'}"
    store = Store.open(store_url)
    register(store)
    tokens = {role: store.create_token(role) for role in ("viewer", "operator")}
    store.close()
    (work / "ref.csv").write_text("x1,x2,color,label\n0.1,0.2,red,1\n")
    running = start_server(work, store_url, {"MLWATCH_MLFLOW_TRACKING_URI": f"sqlite:///{work / 'm.db'}"})
    yield running, tokens
    running.stop()


def _mlwatch(workdir: Path, *args: str, **env: str | None) -> Result:
    environ = {"MLWATCH_URL": None, "MLWATCH_TOKEN": None, "MLWATCH_CONFIG": None, **env}
    with contextlib.chdir(workdir):  # where ref.csv is
        return CliRunner().invoke(main, list(args), env=environ, prog_name="mlwatch")


def _jobs(running: RunningServer) -> int:
    store = Store.open(running.store_url)
    try:
        return len(store.list_jobs())
    finally:
        store.close()


@pytest.mark.parametrize("command", ACTIONS, ids=lambda c: c[0])
def test_a_viewer_token_gets_the_apis_403_as_one_line_and_exit_status_1(
    api: tuple[RunningServer, dict[str, str]], command: list[str]
) -> None:
    running, tokens = api
    refused = _mlwatch(running.workdir, *command, MLWATCH_URL=running.url, MLWATCH_TOKEN=tokens["viewer"])
    assert refused.exit_code == 1
    needs = "operator, admin" if command[0] != "reference" else "admin"
    assert refused.stderr.splitlines()[-1] == (
        f"Error: the API at {running.url} answered 403: a viewer token may not do this; it needs one of the "
        f"roles: {needs}; pass a token with one of those roles (--token or MLWATCH_TOKEN)"
    )
    assert "Traceback" not in refused.output and _jobs(running) == 0


def test_without_a_token_the_401_says_how_to_pass_one(api: tuple[RunningServer, dict[str, str]]) -> None:
    running, _ = api
    refused = _mlwatch(running.workdir, "retrain", "credit", MLWATCH_URL=running.url)
    assert refused.exit_code == 1
    assert f"the API at {running.url} answered 401: missing Authorization header" in refused.stderr
    assert "pass a token with --token or MLWATCH_TOKEN (`mlwatch token create --role operator`" in refused.stderr


def test_url_and_token_options_win_over_the_environment(api: tuple[RunningServer, dict[str, str]]) -> None:
    running, tokens = api
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {"MLWATCH_URL": nowhere, "MLWATCH_TOKEN": tokens["viewer"]}
    options = ["--url", running.url, "--token", tokens["operator"]]
    queued = _mlwatch(running.workdir, "retrain", "credit", *options, **env)
    assert queued.exit_code == 0, queued.output
    assert queued.stdout.startswith("job ") and queued.stdout.strip().endswith("for credit")
    assert queued.stderr == f"mlwatch retrain: API {running.url} (--url)\n"
    store = Store.open(running.store_url)
    try:
        (job,) = store.list_jobs()
        store.cancel_job(job.id)  # leave no active job for the other tests
    finally:
        store.close()
    assert job.created_by == f"token:{tokens['operator'][:8]}"


@pytest.mark.parametrize("command", ACTIONS, ids=lambda c: c[0])
def test_an_unreachable_server_is_named_with_how_to_start_one(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "ref.csv").write_text("x\n1\n")
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = _mlwatch(tmp_path, *command, MLWATCH_URL=nowhere, MLWATCH_TOKEN="t")
    assert result.exit_code == 1 and "Traceback" not in result.output
    message = result.stderr.splitlines()[-1]
    assert message.startswith(f"Error: cannot reach the mlwatch API at {nowhere} (MLWATCH_URL): ")
    assert message.endswith(
        "start one with `mlwatch server` (or `mlwatch demo`), or point at a running one with --url or MLWATCH_URL"
    )
    assert not (tmp_path / ".mlwatch").exists() and not list(tmp_path.glob("*.db"))  # no store made on the way


def test_without_url_the_local_servers_default_is_used_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLWATCH_URL", raising=False)
    monkeypatch.setenv("MLWATCH_TOKEN", "from-env")
    assert endpoint(None, None).describe() == f"{DEFAULT_URL} (the default; set MLWATCH_URL or --url)"
    assert (endpoint(None, None).token, endpoint(None, "given").token) == ("from-env", "given")
    monkeypatch.setenv("MLWATCH_URL", "http://mlwatch:8000/")
    assert (endpoint(None, None).url, endpoint("http://other:1", None).source) == ("http://mlwatch:8000", "--url")


@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["token", "create"], ["demo"], ["serve"], ["worker"], ["dashboard"], ["consume"]]
)
def test_the_local_commands_say_they_use_the_local_store_not_mlwatch_url(command: list[str]) -> None:
    shown = CliRunner().invoke(main, [*command, "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "not MLWATCH_URL" in " ".join(shown.output.split()) and "local store" in shown.output


@pytest.mark.parametrize("url", ["nope", "ftp://mlwatch", "http://", "http://[::1"])
def test_a_url_that_is_not_http_is_refused_naming_where_it_came_from(tmp_path: Path, url: str) -> None:
    result = _mlwatch(tmp_path, "promote", "credit", "1", MLWATCH_URL=url)
    assert result.exit_code == 2
    assert f"Invalid value for MLWATCH_URL: expected an http(s) URL such as {DEFAULT_URL}, got {url!r}" in result.stderr
