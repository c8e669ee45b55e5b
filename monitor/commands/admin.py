"""``mlwatch token create`` and ``mlwatch db upgrade``."""

from __future__ import annotations

import click

from monitor.commands import settings_from
from monitor.store import ROLES, Store
from monitor.store.engine import dispose, make_engine
from monitor.store.migrate import current_revision, head_revision, upgrade


@click.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do.")
@click.option("--name", default="", help="A label for the audit log (default: the role).")
@click.pass_context
def token_create(ctx: click.Context, role: str, name: str) -> None:
    """Print a new API token; it is shown once and stored only as a hash."""
    store = Store.open(settings_from(ctx).store_url)
    try:
        click.echo(store.create_token(role, name))
        store.audit("cli", "token.create", name or role, {"role": role})
    finally:
        store.close()


@click.group()
def db() -> None:
    """Manage the store's schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply schema migrations to the configured store."""
    engine = make_engine(settings_from(ctx).store_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        click.echo(f"store schema: {before or 'empty'} -> {head_revision()}")
    finally:
        dispose(engine)
