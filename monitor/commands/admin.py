"""``mlwatch token create|list|revoke`` and ``mlwatch db upgrade``.

``token list`` and ``token revoke`` talk to the API when given its URL and an admin token
(``--url``/``MLWATCH_URL`` and ``--token``/``MLWATCH_TOKEN``; ``monitor.commands.api``), so
they are role-checked and work against a remote stack; otherwise they use the configured
store, and say which. ``token create`` (the first token comes before any server) and
``db upgrade`` run against the local store only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from monitor.commands import settings_from
from monitor.commands.api import connect
from monitor.errors import MlwatchError
from monitor.records import ApiToken
from monitor.store import ROLES, Store
from monitor.store.engine import dispose, make_engine
from monitor.store.migrate import current_revision, head_revision, upgrade

T = TypeVar("T")


@click.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do.")
@click.option("--name", default="", help="A label for the audit log (default: the role).")
@click.pass_context
def token_create(ctx: click.Context, role: str, name: str) -> None:
    """Print a new API token; it is shown once and stored only as a hash.

    Runs against the local store (store_url), not MLWATCH_URL: it makes the first token,
    before any server runs. Through a server: POST /v1/tokens with an admin token.
    """
    with _local_store(ctx) as store:
        listed, token = store.issue_token(role, name)
        store.audit("cli", "token.create", str(listed.id), {"role": role, "name": listed.name})
    click.echo(token)


_url_option = click.option("--url", default=None, help="mlwatch API URL (default: $MLWATCH_URL).")
_token_option = click.option("--token", "api_token", default=None, help="An admin token (default: $MLWATCH_TOKEN).")
_local_option = click.option("--local", is_flag=True, help="Use the configured store even when an API is given.")


@token.command("list")
@_url_option
@_token_option
@_local_option
@click.pass_context
def token_list(ctx: click.Context, url: str | None, api_token: str | None, local: bool) -> None:
    """List API tokens: id, name, role, created, last used, revoked (never the token or its hash)."""
    api = None if local else _api(url, api_token)
    if api:
        with connect(ctx, *api, refused_hint=_LOCAL_HINT) as client:
            tokens = [_from_json(t) for t in client.call("GET", "/v1/tokens")]
    else:
        with _local_store(ctx) as store:
            tokens = store.list_tokens()
    click.echo(_table(tokens))


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=click.IntRange(min=1))
@_url_option
@_token_option
@_local_option
@click.pass_context
def token_revoke(ctx: click.Context, token_id: int, url: str | None, api_token: str | None, local: bool) -> None:
    """Revoke the token with ID (see `mlwatch token list`); it is refused from then on."""
    api = None if local else _api(url, api_token)
    if api:
        with connect(ctx, *api, refused_hint=_LOCAL_HINT) as client:
            revoked = _from_json(client.call("DELETE", f"/v1/tokens/{token_id}"))
    else:
        with _local_store(ctx) as store:
            revoked = _run(lambda: store.revoke_token_id(token_id))
            store.audit("cli", "token.revoke", str(token_id), {"role": revoked.role, "name": revoked.name})
    click.echo(f"revoked token {revoked.id} ({revoked.name}, {revoked.role})")


def _api(url: str | None, token: str | None) -> tuple[str, str] | None:
    """The API URL and token when both are given (options, else MLWATCH_URL and MLWATCH_TOKEN)."""
    url = url or os.environ.get("MLWATCH_URL")
    token = token or os.environ.get("MLWATCH_TOKEN")
    return (url.rstrip("/"), token) if url and token else None


_LOCAL_HINT = " (or pass --local to use the configured store)"


@contextmanager
def _local_store(ctx: click.Context) -> Iterator[Store]:
    store = _run(lambda: Store.open(settings_from(ctx).store_url))
    click.echo(f"{ctx.command_path}: store {store.engine.url.render_as_string(hide_password=True)}", err=True)
    try:
        yield store
    finally:
        store.close()


def _run(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except MlwatchError as exc:
        raise click.ClickException(str(exc)) from exc


def _from_json(found: dict[str, Any]) -> ApiToken:
    return ApiToken(
        id=int(found["id"]),
        name=str(found["name"]),
        role=str(found["role"]),
        created_at=float(found["created_at"]),
        last_used_at=None if found["last_used_at"] is None else float(found["last_used_at"]),
        revoked=bool(found["revoked"]),
    )


def _table(tokens: list[ApiToken]) -> str:
    rows = [("ID", "NAME", "ROLE", "CREATED", "LAST USED", "REVOKED")]
    rows += [
        (str(t.id), t.name, t.role, _when(t.created_at), _when(t.last_used_at), "yes" if t.revoked else "no")
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _when(at: float | None) -> str:
    return "never" if at is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(at))


@click.group()
def db() -> None:
    """Manage the store's schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply schema migrations to the configured store; runs against the local store (store_url), not MLWATCH_URL."""
    engine = make_engine(settings_from(ctx).store_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        click.echo(f"store schema: {before or 'empty'} -> {head_revision()}")
    finally:
        dispose(engine)
