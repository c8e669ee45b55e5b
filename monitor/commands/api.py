"""The command line's client of the mlwatch API, used by the action commands.

``check``, ``retrain``, ``promote``, ``rollback``, ``reference upload`` (and ``token list`` /
``token revoke`` when given a URL and a token) send their request to the API at ``--url`` or
``MLWATCH_URL`` (default ``http://127.0.0.1:8000``) with the bearer token of ``--token`` or
``MLWATCH_TOKEN``, so the server checks the token's role, audits the caller and works the
same against a remote stack. What goes wrong is one line and exit status 1, never a traceback:

    $ MLWATCH_TOKEN=$VIEWER mlwatch promote credit 7
    mlwatch promote: API http://127.0.0.1:8000 (the default; set MLWATCH_URL or --url)
    Error: the API at http://127.0.0.1:8000 answered 403: a viewer token may not do this; it needs one
    of the roles: operator, admin; pass a token with one of those roles (--token or MLWATCH_TOKEN)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
"""Where ``mlwatch server`` listens by default (``server_host``, ``server_port``); the SDK's default too."""
TIMEOUT = 120.0
"""Seconds to wait for an answer: a check of a large window takes a few seconds, MLflow calls more."""
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Endpoint:
    """The API a command talks to, its token, and which setting chose the URL (shown to the user)."""

    url: str
    token: str | None
    source: str  # "--url", "MLWATCH_URL", "the default; set MLWATCH_URL or --url"

    def describe(self) -> str:
        """``http://mlwatch:8000 (MLWATCH_URL)``."""
        return f"{self.url} ({self.source})"


def endpoint(url: str | None, token: str | None) -> Endpoint:
    """The options given, else ``MLWATCH_URL`` and ``MLWATCH_TOKEN``, else the local server's URL and no token."""
    if url:
        source = "--url"
    elif os.environ.get("MLWATCH_URL"):
        url, source = os.environ["MLWATCH_URL"], "MLWATCH_URL"
    else:
        url, source = DEFAULT_URL, "the default; set MLWATCH_URL or --url"
    _check_url(url, source)
    return Endpoint(url.rstrip("/"), token or os.environ.get("MLWATCH_TOKEN") or None, source)


def _check_url(url: str, source: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        fine = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an unbalanced [ of an IPv6 address
        fine = False
    if not fine:
        raise click.BadParameter(f"expected an http(s) URL such as {DEFAULT_URL}, got {url!r}", param_hint=source)


def api_options(command: F) -> F:
    """``--url`` and ``--token`` on an action command (passed as ``url`` and ``api_token``)."""
    command = click.option(
        "--token",
        "api_token",
        default=None,
        help="Bearer token of a role allowed to do this (default: $MLWATCH_TOKEN).",
    )(command)
    return click.option("--url", default=None, help=f"mlwatch API URL (default: $MLWATCH_URL or {DEFAULT_URL}).")(
        command
    )


class Api:
    """One command's session with the API: requests that answer JSON, or raise a one-line ClickException.

    ``refused_hint`` is added to 401 and 403 messages where the command has another way
    (``--local``).
    """

    def __init__(self, where: Endpoint, *, refused_hint: str = "") -> None:
        headers = {"Authorization": f"Bearer {where.token}"} if where.token else {}
        self.where = where
        self.refused_hint = refused_hint
        self._client = httpx.Client(base_url=where.url, headers=headers, timeout=TIMEOUT)

    def call(self, method: str, path: str, **request: Any) -> Any:
        """Send one request (``json=``, ``files=``, ``data=`` as httpx takes them); return its JSON answer."""
        try:
            answer = self._client.request(method, path, **request)
        except httpx.HTTPError as exc:
            raise click.ClickException(self._unreachable(exc)) from exc
        if not answer.is_success:
            raise click.ClickException(self._refusal(answer))
        return answer.json() if answer.content else None

    def _unreachable(self, exc: httpx.HTTPError) -> str:
        reason = str(exc) or type(exc).__name__
        return (
            f"cannot reach the mlwatch API at {self.where.describe()}: {reason}; start one with `mlwatch server` "
            "(or `mlwatch demo`), or point at a running one with --url or MLWATCH_URL"
        )

    def _refusal(self, answer: httpx.Response) -> str:
        try:
            message = str(answer.json()["message"])
        except (ValueError, KeyError, TypeError):
            message = answer.text[:200] or answer.reason_phrase
        hint = {
            401: "; pass a token with --token or MLWATCH_TOKEN (`mlwatch token create --role operator` makes one)",
            403: "; pass a token with one of those roles (--token or MLWATCH_TOKEN)",
        }.get(answer.status_code, "")
        extra = self.refused_hint if answer.status_code in (401, 403) else ""
        return f"the API at {self.where.url} answered {answer.status_code}: {message}{hint}{extra}"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


@contextmanager
def connect(
    ctx: click.Context, url: str | None, token: str | None, *, refused_hint: str = "", announce: bool = True
) -> Iterator[Api]:
    """An ``Api`` for the command of ``ctx``, saying on stderr which API it talks to."""
    where = endpoint(url, token)
    if announce:
        click.echo(f"{ctx.command_path}: API {where.describe()}", err=True)
    api = Api(where, refused_hint=refused_hint)
    try:
        yield api
    finally:
        api.close()


def path_part(value: str) -> str:
    """``value`` quoted for one path segment (a service name may hold characters a URL path may not)."""
    from urllib.parse import quote

    return quote(value, safe="")
