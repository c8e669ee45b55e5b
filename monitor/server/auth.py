"""Bearer-token authentication with roles: ingest, viewer, operator, admin."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from monitor.errors import AuthError
from monitor.records import ApiToken
from monitor.roles import may, roles_with
from monitor.store import Store

REVALIDATE_SECONDS = 2.0
"""How long a process trusts what it read about a token. A token revoked through this
process is refused on its very next request (``TokenAuth.revoke`` invalidates the cache);
one revoked through another process sharing the store (another replica or ``--workers``
process, ``mlwatch token revoke`` on the store) is refused within this many seconds. Two
seconds costs one indexed read per token per process every two seconds, nothing next to
an ingest call."""
TOUCH_SECONDS = 60.0
"""A token's ``last_used_at`` is written at most once a minute, not on every call, so that
ingest does not queue a write per request."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the role of their token and a name for the audit log."""

    role: str
    name: str


@dataclass(slots=True)
class _Known:
    token: ApiToken | None  # None: unknown or revoked
    read_at: float
    generation: int


class TokenAuth:
    """Resolves bearer tokens to principals, with a short cache so ingest does not hit the store per call."""

    def __init__(
        self,
        store: Store,
        bootstrap_token: str | None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._bootstrap = bootstrap_token
        self._clock = clock
        self._wall = wall
        self._cache: dict[str, _Known] = {}
        self._generation = 0  # bumped by each revocation here: every cached answer is read again
        self._touched: dict[int, float] = {}

    def authenticate(self, header: str | None) -> Principal:
        """The principal for an ``Authorization`` header value; AuthError (401) if none or invalid."""
        if not header:
            raise AuthError(
                "missing Authorization header; send 'Authorization: Bearer <token>' (see `mlwatch token create`)"
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("malformed Authorization header; expected 'Bearer <token>'")
        token = token.strip()
        if self._bootstrap and hmac.compare_digest(token.encode(), self._bootstrap.encode()):
            return Principal("admin", "bootstrap")
        found = self._lookup(token)
        if found is None:
            raise AuthError("invalid or revoked token")
        self._touch(found)
        return Principal(found.role, f"token:{token[:8]}")

    def revoke(self, token_id: int) -> ApiToken:
        """Revoke a token in the store and stop trusting this process's cache at once."""
        revoked = self._store.revoke_token_id(token_id)
        self._generation += 1
        return revoked

    def _lookup(self, token: str) -> ApiToken | None:
        now = self._clock()
        known = self._cache.get(token)
        if known and known.generation == self._generation and now - known.read_at < REVALIDATE_SECONDS:
            return known.token
        generation = self._generation
        found = self._store.token_access(token)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = _Known(found, now, generation)
        return found

    def _touch(self, token: ApiToken) -> None:
        now = self._wall()
        last = max(self._touched.get(token.id, 0.0), token.last_used_at or 0.0)
        if now - last < TOUCH_SECONDS:
            return
        self._touched[token.id] = now  # first, so concurrent requests of this token do not all write
        self._store.touch_token(token.id, now, every=TOUCH_SECONDS)


def require(permission: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency that admits tokens whose role grants ``permission``."""

    def dependency(request: Request) -> Principal:
        auth: TokenAuth = request.app.state.auth
        principal = auth.authenticate(request.headers.get("authorization"))
        if not may(principal.role, permission):
            allowed = roles_with(permission)
            article = "an" if principal.role[0] in "aeiou" else "a"
            raise AuthError(
                f"{article} {principal.role} token may not do this; it needs one of the roles: {', '.join(allowed)}",
                status=403,
            )
        return principal

    dependency.__name__ = f"require_{permission}"
    return dependency
