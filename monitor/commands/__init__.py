"""Command implementations of the ``mlwatch`` CLI, one module per area."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.config import Settings
from monitor.errors import ConfigError, MlwatchError
from monitor.settings import load_settings

if TYPE_CHECKING:
    from monitor.store import Store


def settings_from(ctx: click.Context) -> Settings:
    """Load the configuration named on the command line; a bad one exits with its message."""
    try:
        return load_settings((ctx.find_root().obj or {}).get("config"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


POINT_ELSEWHERE = "point at another with --config PATH/mlwatch.yaml or MLWATCH_STORE_URL=sqlite:////abs/path/mlwatch.db"
"""How to make a command use another store: what every store message ends with."""


@dataclass(frozen=True)
class StoreLocation:
    """The store a command uses, as the user should see it, and where that choice came from."""

    url: str
    shown: str  # password hidden; a SQLite path made absolute, since it is relative to the cwd
    source: str  # "MLWATCH_STORE_URL", "store_url in mlwatch.yaml", "the default store_url"
    sqlite_file: Path | None  # None for PostgreSQL and in-memory SQLite

    def describe(self) -> str:
        """``sqlite:////srv/x/mlwatch.db (MLWATCH_STORE_URL)``."""
        return f"{self.shown} ({self.source})"


def store_location(ctx: click.Context, settings: Settings) -> StoreLocation:
    """Where ``settings.store_url`` points and which setting chose it."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(settings.store_url)
    except Exception as exc:  # sqlalchemy raises ArgumentError for a malformed URL
        raise click.ClickException(f"store_url: expected a database URL, got {settings.store_url!r}") from exc
    path = None
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
        path = Path(database).expanduser().absolute()
        url = url.set(database=str(path))
    return StoreLocation(settings.store_url, url.render_as_string(hide_password=True), _store_source(ctx), path)


def _store_source(ctx: click.Context) -> str:
    if os.environ.get("MLWATCH_STORE_URL"):
        return "MLWATCH_STORE_URL"
    named = (ctx.find_root().obj or {}).get("config")
    config = Path(named) if named else Path("mlwatch.yaml")
    if config.is_file() and "store_url" in _yaml_keys(config):
        return f"store_url in {config}"
    return "the default store_url"


def _yaml_keys(path: Path) -> set[str]:
    import yaml

    data = yaml.safe_load(path.read_text())  # already parsed once by settings_from: it is valid
    return set(data) if isinstance(data, dict) else set()


def open_existing_store(
    ctx: click.Context, settings: Settings, *, announce: bool = True
) -> tuple[Store, StoreLocation]:
    """Open the configured store, refusing one that does not exist yet; say which on stderr.

    ``Store.open`` creates a SQLite file that is not there (what ``mlwatch server`` wants);
    a command that needs stored data would then fail later with "unknown service" about a
    store nobody meant to use, so this checks for the file first.
    """
    from sqlalchemy.exc import OperationalError

    from monitor.store import Store

    where = store_location(ctx, settings)
    if where.sqlite_file is not None and not where.sqlite_file.is_file():
        raise click.ClickException(
            f"no mlwatch store at {where.describe()}: {where.sqlite_file} does not exist; run this where the "
            f"store is, or {POINT_ELSEWHERE} (`mlwatch server` and `mlwatch db upgrade` create one)"
        )
    if announce:
        click.echo(f"{ctx.command_path}: store {where.describe()}", err=True)
    try:
        return Store.open(where.url), where
    except MlwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    except OperationalError as exc:
        reason = str(exc.orig or exc).splitlines()[0]
        raise click.ClickException(f"cannot open the store at {where.describe()}: {reason}; {POINT_ELSEWHERE}") from exc


def open_configured_store(ctx: click.Context, *, announce: bool = True) -> tuple[Store, StoreLocation]:
    """``open_existing_store`` with the services named in mlwatch.yaml registered, as the server
    does when it starts (so a service configured there is known before any server ran)."""
    settings = settings_from(ctx)
    store, where = open_existing_store(ctx, settings, announce=announce)
    if not settings.services:
        return store, where  # without importing the server's app (about 1 s of CPU)
    from monitor.server.app import sync_services

    try:
        sync_services(settings, store)
    except MlwatchError as exc:
        store.close()
        raise click.ClickException(str(exc)) from exc
    return store, where


INTERACTIVE_MLFLOW = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}
"""MLflow's HTTP retry budget for processes that answer people (API, dashboard): a few seconds
before saying MLflow is unavailable, instead of MLflow's default of several minutes. Variables
already set win; the worker and retrain jobs keep MLflow's defaults."""


def use_interactive_mlflow_budget(env: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Set ``INTERACTIVE_MLFLOW`` in ``env`` where not set already."""
    for name, value in INTERACTIVE_MLFLOW.items():
        env.setdefault(name, value)
