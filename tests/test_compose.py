"""docker-compose.yml: every command is one the project accepts, ports, environment and
health checks agree, and the processes it names run here wired the same way."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import yaml
from sqlalchemy import create_engine, make_url, text

from monitor.cli import main
from monitor.config import Settings
from monitor.settings import load_settings
from monitor.store import Store
from tests.conftest import free_port, stop_process, wait_http

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = {name: spec for name, spec in SERVICES.items() if spec.get("image") == "mlwatch:latest"}
ENV = {
    "POSTGRES_PASSWORD": "secret-from-env",
    "MLWATCH_BOOTSTRAP_TOKEN": "token-from-env",
    "MLWATCH_DASHBOARD_SECRET": "dashboard-secret-from-env-32-characters",
    "GRAFANA_ADMIN_PASSWORD": "x",
}
_VAR = re.compile(r"\$\$|\$\{(\w+)(?::([-?])([^}]*))?\}")
PLAIN_UP = {k: v for k, v in ENV.items() if k != "GRAFANA_ADMIN_PASSWORD"}  # what `docker compose up` needs


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution, and $$ for a literal $."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if name is None:
            return "$"
        if env.get(name):
            return env[name]
        if op == "?":
            raise ValueError(f"{name}: {arg}")
        return arg if op == "-" else ""

    return _VAR.sub(one, value)


def interpolate_all(node: Any, env: dict[str, str]) -> Any:
    """Every string of the file interpolated, as compose does before it looks at profiles."""
    if isinstance(node, dict):
        return {key: interpolate_all(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_all(value, env) for value in node]
    return interpolate(node, env) if isinstance(node, str) else node


def command_of(spec: dict[str, Any]) -> list[str]:
    command = spec.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_required_secrets_have_no_defaults() -> None:
    raw = (ROOT / "docker-compose.yml").read_text()
    for secret in (
        "POSTGRES_PASSWORD",
        "MLWATCH_BOOTSTRAP_TOKEN",
        "MLWATCH_DASHBOARD_SECRET",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert re.findall(rf"\${{{secret}(:[-?][^}}]*)?}}", raw), secret
        assert not re.search(rf"\${{{secret}:?-[^}}]", raw)  # a default password would be a password in the file
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD: set POSTGRES_PASSWORD"):
        interpolate(SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"], {})


def test_plain_up_needs_no_password_of_the_monitoring_profile() -> None:
    interpolated = interpolate_all(COMPOSE, PLAIN_UP)  # compose interpolates profiled services too
    assert interpolated["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == ""
    with pytest.raises(ValueError, match="MLWATCH_BOOTSTRAP_TOKEN: set MLWATCH_BOOTSTRAP_TOKEN"):
        interpolate_all(COMPOSE, {"POSTGRES_PASSWORD": "p"})


def _grafana_start(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Grafana's compose entrypoint, with the image's /run.sh standing in as a script that says so."""
    run = tmp_path / "run.sh"
    run.write_text("#!/bin/sh\necho grafana started\n")
    run.chmod(0o755)
    spec = interpolate_all(SERVICES["grafana"], env)
    argv = [a.replace("/run.sh", str(run)) for a in spec["entrypoint"]]
    environment = {"PATH": os.environ["PATH"], **{k: v for k, v in spec["environment"].items() if v}}
    return subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=30)


def test_grafana_refuses_to_start_without_its_admin_password(tmp_path: Path) -> None:
    refused = _grafana_start(tmp_path, PLAIN_UP)
    assert refused.returncode == 1 and "set GRAFANA_ADMIN_PASSWORD" in refused.stderr
    started = _grafana_start(tmp_path, ENV)
    assert (started.returncode, started.stdout) == (0, "grafana started\n")


def test_database_password_with_url_characters_reaches_libpq(
    postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "p@ss:w/rd#?%40&x"
    env = {**ENV, "POSTGRES_PASSWORD": password, "POSTGRES_USER": "postgres"}
    server = interpolate_all(OURS["server"]["environment"], env)
    mlflow_uri = next(a for a in interpolate_all(command_of(OURS["mlflow"]), env) if a.startswith("postgresql"))
    for uri, database in ((server["MLWATCH_STORE_URL"], "mlwatch"), (mlflow_uri, "mlflow")):
        url = make_url(uri)
        parts = (url.username, url.password, url.host, url.port, url.database)
        assert parts == ("postgres", None, "postgres", 5432, database)
    assert server["PGPASSWORD"] == password
    local = make_url(server["MLWATCH_STORE_URL"]).set(host=make_url(postgres_server).host, database="test")
    monkeypatch.setenv("PGPASSWORD", server["PGPASSWORD"])
    engine = create_engine(local.set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        assert conn.connection.driver_connection.info.password == password  # type: ignore[union-attr]
    engine.dispose()


@pytest.mark.parametrize("name", sorted(n for n in OURS if n != "mlflow"))
def test_every_mlwatch_command_parses_with_the_cli(name: str) -> None:
    args = command_of(OURS[name])
    ctx = main.make_context("mlwatch", list(args), resilient_parsing=False)
    command: click.Command | None = main
    rest = list(args)
    while isinstance(command, click.Group):
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"{name}: unknown command {rest[0]!r}"
        ctx = sub.make_context(rest[0], rest[1:], parent=ctx)  # raises on an unknown option or bad value
        command, rest = sub, ctx.protected_args + ctx.args if isinstance(sub, click.Group) else []


def test_mlflow_command_is_accepted_by_mlflow_server() -> None:
    from mlflow.cli import cli as mlflow_cli

    args = [interpolate(a, ENV) for a in command_of(OURS["mlflow"])]
    server = mlflow_cli.get_command(click.Context(mlflow_cli), args[0])
    assert server is not None
    server.make_context("server", args[1:])
    assert option(args, "--allowed-hosts") and "mlflow" in option(args, "--allowed-hosts").split(",")  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "ports" in s))
def test_published_port_is_the_one_the_process_listens_on(name: str) -> None:
    spec = SERVICES[name]
    container_port = str(spec["ports"][0]).rsplit(":", 1)[1]
    listens = option(command_of(spec), "--port") or {"prometheus": "9090", "grafana": "3000", "nats": "4222"}.get(name)
    assert listens == container_port
    health = " ".join(spec.get("healthcheck", {}).get("test", []))
    if health:  # NATS answers its health on the monitoring port (-m), not the client port
        assert f":{option(command_of(spec), '-m') or container_port}/" in health


def test_every_dashboard_replica_signs_sessions_with_the_key_from_the_environment() -> None:
    env = interpolate_all(OURS["dashboard"]["environment"], ENV)
    assert env["MLWATCH_DASHBOARD_SECRET"] == ENV["MLWATCH_DASHBOARD_SECRET"]
    with pytest.raises(ValueError, match="MLWATCH_DASHBOARD_SECRET: set MLWATCH_DASHBOARD_SECRET"):
        interpolate_all(
            OURS["dashboard"]["environment"], {k: v for k, v in ENV.items() if k != "MLWATCH_DASHBOARD_SECRET"}
        )


def test_environment_is_valid_configuration() -> None:
    env = {k: interpolate(str(v), ENV) for k, v in OURS["server"]["environment"].items()}
    collectors = {"MLWATCH_URL", "MLWATCH_TOKEN"}
    for key in env:
        if key.startswith("MLWATCH_") and key not in collectors:
            assert key.removeprefix("MLWATCH_").lower() in Settings.model_fields, key
    settings = load_settings(environ=env)
    assert settings.store_url.startswith("postgresql://") and settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.bootstrap_token == "token-from-env"


def test_dependencies_wait_for_health_checks_that_exist() -> None:
    for name, spec in SERVICES.items():
        for dep, rule in (spec.get("depends_on") or {}).items() if isinstance(spec.get("depends_on"), dict) else []:
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if rule.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep}, which has no health check"
    assert {"postgres", "mlflow", "server", "worker", "dashboard", "serve", "prometheus", "grafana", "nats"} <= {
        n for n, s in SERVICES.items() if "healthcheck" in s
    }


def test_the_consumer_reads_the_nats_service_once_jetstream_is_up_and_the_schema_is_migrated() -> None:
    consumer = OURS["consumer"]
    stream = option(command_of(consumer), "--stream")
    assert stream == f"nats://nats:{SERVICES['nats']['ports'][0].rsplit(':', 1)[1]}"
    assert consumer["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "nats": {"condition": "service_healthy"},
    }
    assert "js-enabled-only=true" in " ".join(SERVICES["nats"]["healthcheck"]["test"])


def test_nats_runs_here_with_the_compose_arguments_keeps_jetstream_on_its_volume_and_passes_its_health_check(
    tmp_path: Path,
) -> None:
    import shutil

    if shutil.which("nats-server") is None:
        pytest.skip("nats-server is not installed")
    spec = SERVICES["nats"]
    args = command_of(spec)
    volume = next(str(m).split(":")[1] for m in spec["volumes"] if str(m).startswith("natsdata:"))
    assert option(args, "-sd") == volume and "-js" in args
    client, monitor = free_port(), free_port()
    local = [str(tmp_path) if a == volume else str(monitor) if a == option(args, "-m") else a for a in args]
    process = subprocess.Popen(["nats-server", *local, "-a", "127.0.0.1", "-p", str(client)], stderr=subprocess.PIPE)
    try:
        url = next(a for a in spec["healthcheck"]["test"] if a.startswith("http://"))
        health = url.replace(f":{option(args, '-m')}/", f":{monitor}/")
        wait_http(health, timeout=20, proc=process)
        deadline = time.monotonic() + 20
        while (answer := httpx.get(health, timeout=2)).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    finally:
        stop_process(process)
    assert (tmp_path / "jetstream").is_dir()  # JetStream wrote its store on the volume


def test_postgres_is_healthy_only_once_it_listens_on_tcp() -> None:
    # during init the image's temporary server listens on the socket only
    assert "-h 127.0.0.1" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])


def _health_command(name: str) -> list[str]:
    kind, *argv = SERVICES[name]["healthcheck"]["test"]
    assert kind == "CMD" and argv[0] == "python"
    return [sys.executable, *argv[1:]]


def test_worker_health_check_passes_only_on_a_store_at_the_current_schema(postgres_url: str) -> None:
    env = {**os.environ, "MLWATCH_STORE_URL": postgres_url}
    unmigrated = subprocess.run(_health_command("worker"), env=env, capture_output=True, text=True, timeout=60)
    assert unmigrated.returncode != 0 and "mlwatch db upgrade" in unmigrated.stderr
    Store.open(postgres_url, migrate=True).close()
    migrated = subprocess.run(_health_command("worker"), env=env, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr


def test_no_service_runs_as_root_and_volumes_belong_to_the_image_user() -> None:
    assert all(spec.get("user") not in ("root", "0") for spec in SERVICES.values())
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\w+)", dockerfile, re.M)[-1]
    for name, spec in OURS.items():
        for mount in spec.get("volumes", []):
            source, target = str(mount).split(":")[:2]
            if not source.startswith((".", "/")):  # a named volume takes the image directory's owner
                assert re.search(rf"chown {user}(:{user})? {re.escape(target)}\b", dockerfile), (name, target)


def test_monitoring_scrapes_the_api_metrics_that_exist() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]  # once per stack: the values are the store's
    assert job["metrics_path"] == "/metrics" and target == f"server:{option(command_of(SERVICES['server']), '--port')}"
    secret = job["authorization"]["credentials_file"].removeprefix("/run/secrets/")
    assert secret in SERVICES["prometheus"]["secrets"]
    assert COMPOSE["secrets"][secret] == {"environment": "MLWATCH_BOOTSTRAP_TOKEN"}
    dashboard = (ROOT / "deploy/grafana/dashboards/mlwatch.json").read_text()
    exposed = set(re.findall(r'"(mlwatch_[a-z_]+)', (ROOT / "monitor/server/routes/metrics.py").read_text()))
    for metric in set(re.findall(r"(mlwatch_[a-z_]+)", dashboard)):
        base = re.sub(r"_(bucket|total|sum|count)$", "", metric)
        assert metric in exposed or base in exposed, metric


# --- the same processes, wired the way compose wires them --------------------------------


@pytest.fixture
def databases(postgres_server: str) -> Iterator[dict[str, str]]:
    """Two fresh databases standing in for compose's `mlwatch` and `mlflow`."""
    names = {"mlwatch": f"cmp_{uuid.uuid4().hex[:8]}", "mlflow": f"cmpflow_{uuid.uuid4().hex[:8]}"}
    admin = create_engine(
        postgres_server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        for db in names.values():
            conn.execute(text(f"CREATE DATABASE {db}"))
    yield names
    with admin.connect() as conn:
        for db in names.values():
            conn.execute(text(f"DROP DATABASE {db} WITH (FORCE)"))
    admin.dispose()


class Wiring:
    """Rewrites compose's service names, container ports and paths to this machine."""

    def __init__(self, databases: dict[str, str], workdir: Path) -> None:
        self.ports = {"server": free_port(), "server2": free_port(), "mlflow": free_port(), "dashboard": free_port()}
        self.databases = databases
        self.workdir = workdir

    def value(self, raw: str) -> str:
        out = interpolate(raw, {**ENV, "POSTGRES_USER": "postgres"})
        for compose_db, local_db in self.databases.items():
            out = out.replace(f"@postgres:5432/{compose_db}", f"@127.0.0.1:5432/{local_db}")
        out = out.replace("mlflow:5000", f"127.0.0.1:{self.ports['mlflow']}")  # URLs and --allowed-hosts
        out = out.replace("http://server:8000", f"http://127.0.0.1:{self.ports['server']}")
        return out.replace("/mlartifacts", str(self.workdir / "mlartifacts")).replace("0.0.0.0", "127.0.0.1")

    def env(self, spec: dict[str, Any]) -> dict[str, str]:
        return {**os.environ, **{k: self.value(str(v)) for k, v in spec.get("environment", {}).items()}}

    def argv(self, spec: dict[str, Any], port_key: str | None) -> list[str]:
        args = [self.value(a) for a in command_of(spec)]
        if port_key and "--port" in args:
            args[args.index("--port") + 1] = str(self.ports[port_key])
        entry = spec.get("entrypoint", ["mlwatch"])
        program = (
            [sys.executable, "-m", "monitor"] if entry == ["mlwatch"] else [str(Path(sys.executable).parent / entry[0])]
        )
        return [*program, *args]


@pytest.mark.slow
def test_compose_processes_run_here_wired_the_same_way(tmp_path: Path, databases: dict[str, str]) -> None:
    wiring = Wiring(databases, tmp_path)
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, port_key: str | None = None) -> subprocess.Popen[bytes]:
        spec = SERVICES[name]
        log = (tmp_path / f"{port_key or name}.log").open("wb")
        proc = subprocess.Popen(
            wiring.argv(spec, port_key), env=wiring.env(spec), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
        procs.append(proc)
        return proc

    try:
        migrate = subprocess.run(
            wiring.argv(SERVICES["migrate"], None),
            env=wiring.env(SERVICES["migrate"]),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        mlflow = start("mlflow", "mlflow")
        servers = [start("server", "server"), start("server", "server2")]  # two replicas on one database
        start("worker")
        dashboard = start("dashboard", "dashboard")
        for proc, key, path in [
            (mlflow, "mlflow", "/health"),
            (servers[0], "server", "/healthz"),
            (servers[1], "server2", "/healthz"),
            (dashboard, "dashboard", "/_stcore/health"),
        ]:
            wait_http(f"http://127.0.0.1:{wiring.ports[key]}{path}", timeout=120, proc=proc)
        _exercise_the_stack(wiring)
    finally:
        for proc in procs:
            proc.terminate()  # all at once, so the waits below overlap
        for proc in procs:
            stop_process(proc, grace=15)


def _exercise_the_stack(wiring: Wiring) -> None:
    headers = {"Authorization": "Bearer token-from-env"}
    a = httpx.Client(base_url=f"http://127.0.0.1:{wiring.ports['server']}", headers=headers, timeout=30)
    b = httpx.Client(base_url=f"http://127.0.0.1:{wiring.ports['server2']}", headers=headers, timeout=30)
    features = [{"name": "x"}, {"name": "kind", "type": "categorical"}]
    assert a.post("/v1/services", json={"name": "credit", "target": "y", "features": features}).status_code == 200
    reference = [{"x": float(i % 10), "kind": "ab"[i % 2], "y": int(i % 10 > 4)} for i in range(400)]
    assert b.post("/v1/services/credit/reference", json={"records": reference}).status_code == 200
    records = [{"request_id": f"r{i}", "features": {"x": 1.0, "kind": "a"}, "latency_ms": 2.0} for i in range(50)]
    assert b.post("/v1/services/credit/predictions", json={"records": records}).json()["accepted"] == 50
    assert a.get("/v1/services/credit").json()["predictions_last_hour"] == 50  # replicas share the store
    job = a.post("/v1/services/credit/retrain", json={"mode": "retrain"}).json()["job_id"]
    deadline = time.monotonic() + 180
    while (status := b.get(f"/v1/jobs/{job}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert status["status"] == "succeeded", (
        status.get("error"),
        status.get("log"),
    )  # the worker trained and registered through the MLflow server
    models = a.get("/v1/services/credit/models").json()
    assert models["versions"], models
