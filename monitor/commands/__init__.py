"""Command implementations of the ``mlwatch`` CLI, one module per area."""

from __future__ import annotations

import click

from monitor.config import Settings, load_settings
from monitor.errors import ConfigError


def settings_from(ctx: click.Context) -> Settings:
    """Load the configuration named on the command line; a bad one exits with its message."""
    try:
        return load_settings((ctx.find_root().obj or {}).get("config"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
