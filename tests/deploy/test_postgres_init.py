"""deploy/postgres/init.sql, run the way the postgres image's docker-entrypoint.sh runs it.

The image first creates POSTGRES_DB itself (``CREATE DATABASE :"db"`` through psql on the
``postgres`` database), then runs each ``/docker-entrypoint-initdb.d/*.sql`` with
``psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc
--dbname "$POSTGRES_DB" -f FILE``. These tests do exactly that against the local server,
under database names of their own, dropped afterwards. Compose's ``databases`` service runs
the same file again on every start, so a volume whose init failed gets mended.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import unavailable
from tests.test_compose import ENV, SERVICES, interpolate

ROOT = Path(__file__).resolve().parents[2]
INIT_SQL = ROOT / "deploy/postgres/init.sql"


class Entrypoint:
    """The postgres image's init steps, pointed at the local server."""

    def __init__(self, server_url: str) -> None:
        url = make_url(server_url)
        self.user = url.username or "postgres"
        self.env = {**os.environ, "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432)}
        self.env.pop("PGDATABASE", None)

    def psql(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = ["psql", "-v", "ON_ERROR_STOP=1", "--username", self.user, "--no-password", "--no-psqlrc", *args]
        return subprocess.run(argv, input=stdin, env=self.env, capture_output=True, text=True, timeout=60)

    def create_postgres_db(self, name: str) -> None:
        """docker_setup_db: the image's own CREATE DATABASE of POSTGRES_DB (a heredoc on stdin)."""
        done = self.psql("--dbname", "postgres", "--set", f"db={name}", stdin='CREATE DATABASE :"db" ;\n')
        assert done.returncode == 0, done.stderr

    def run_init(self, postgres_db: str, names: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """docker_process_init_files on init.sql; the -v names stand in for compose's own."""
        variables = [f"--set={key}={value}" for key, value in names.items()]
        return self.psql("--dbname", postgres_db, *variables, "-f", str(INIT_SQL))


@pytest.fixture
def entrypoint(postgres_server: str) -> Iterator[tuple[Entrypoint, dict[str, str]]]:
    if shutil.which("psql") is None:  # the image runs init.sql with psql, so these need it too
        unavailable("psql is not installed (apt-get install postgresql-client)", "MLWATCH_REQUIRE_POSTGRES")
    tag = uuid.uuid4().hex[:8]
    names = {"mlwatch_db": f"init_mlwatch_{tag}", "mlflow_db": f"init_mlflow_{tag}", "other": f"init_other_{tag}"}
    yield Entrypoint(postgres_server), names
    admin = create_engine(
        postgres_server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _databases(entry: Entrypoint, names: dict[str, str]) -> set[str]:
    listed = entry.psql("--dbname", "postgres", "-At", "-c", "SELECT datname FROM pg_database")
    return set(listed.stdout.split()) & set(names.values())


def test_first_start_succeeds_when_the_image_already_created_the_mlwatch_database(
    entrypoint: tuple[Entrypoint, dict[str, str]],
) -> None:
    entry, names = entrypoint
    entry.create_postgres_db(names["mlwatch_db"])  # compose: POSTGRES_DB=mlwatch
    init = entry.run_init(names["mlwatch_db"], {k: names[k] for k in ("mlwatch_db", "mlflow_db")})
    assert init.returncode == 0, init.stderr
    assert _databases(entry, names) == {names["mlwatch_db"], names["mlflow_db"]}


def test_init_creates_both_databases_when_postgres_db_is_another_one(
    entrypoint: tuple[Entrypoint, dict[str, str]],
) -> None:
    entry, names = entrypoint
    entry.create_postgres_db(names["other"])  # a POSTGRES_DB (or POSTGRES_USER) of the user's choosing
    init = entry.run_init(names["other"], {k: names[k] for k in ("mlwatch_db", "mlflow_db")})
    assert init.returncode == 0, init.stderr
    assert _databases(entry, names) == set(names.values())


def test_init_run_twice_changes_nothing_and_succeeds(entrypoint: tuple[Entrypoint, dict[str, str]]) -> None:
    entry, names = entrypoint
    entry.create_postgres_db(names["mlwatch_db"])
    wanted = {k: names[k] for k in ("mlwatch_db", "mlflow_db")}
    first, second = entry.run_init(names["mlwatch_db"], wanted), entry.run_init(names["mlwatch_db"], wanted)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert "CREATE DATABASE" in first.stdout and "CREATE DATABASE" not in second.stdout


def _databases_service(entry: Entrypoint, names: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Compose's `databases` service, its host and mounted file mapped to this machine."""
    spec = SERVICES["databases"]
    argv = [interpolate(str(a), {**ENV, "POSTGRES_USER": entry.user}) for a in spec["entrypoint"]]
    mounted = {target: ROOT / source for source, target, *_ in (str(v).split(":") for v in spec["volumes"])}
    argv = [a.replace("--host=postgres", f"--host={entry.env['PGHOST']}") for a in argv]
    argv = [f"--file={mounted[a.removeprefix('--file=')]}" if a.startswith("--file=") else a for a in argv]
    variables = [f"--set={key}={names[key]}" for key in ("mlwatch_db", "mlflow_db")]
    return subprocess.run([*argv, *variables], env=entry.env, capture_output=True, text=True, timeout=60)


def test_databases_service_mends_a_volume_whose_first_start_failed(
    entrypoint: tuple[Entrypoint, dict[str, str]],
) -> None:
    entry, names = entrypoint
    entry.create_postgres_db(names["mlwatch_db"])  # then the old init aborted: no mlflow database, ever
    mended = _databases_service(entry, names)
    assert mended.returncode == 0, mended.stderr
    assert _databases(entry, names) == {names["mlwatch_db"], names["mlflow_db"]}
    assert _databases_service(entry, names).returncode == 0  # and on every later start
