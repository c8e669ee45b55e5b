"""Command implementations of the ``mlwatch`` CLI, one module per area."""

from __future__ import annotations

import os

import click

from monitor.config import Settings, load_settings
from monitor.errors import ConfigError


def settings_from(ctx: click.Context) -> Settings:
    """Load the configuration named on the command line; a bad one exits with its message."""
    try:
        return load_settings((ctx.find_root().obj or {}).get("config"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


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
