"""Bearer-token authentication with roles: ingest, viewer, operator, admin."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from monitor.errors import AuthError
from monitor.store import Store

GRANTS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest"}),
    "viewer": frozenset({"viewer"}),
    "operator": frozenset({"viewer", "operator"}),
    "admin": frozenset({"ingest", "viewer", "operator", "admin"}),
}
_CACHE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the role of their token and a name for the audit log."""

    role: str
    name: str


class TokenAuth:
    """Resolves bearer tokens to principals, with a short cache so ingest does not hit the store per call."""

    def __init__(self, store: Store, bootstrap_token: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._bootstrap = bootstrap_token
        self._clock = clock
        self._cache: dict[str, tuple[str | None, float]] = {}

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
        role = self._lookup(token)
        if role is None:
            raise AuthError("invalid or revoked token")
        return Principal(role, f"token:{token[:8]}")

    def _lookup(self, token: str) -> str | None:
        now = self._clock()
        cached = self._cache.get(token)
        if cached and cached[1] > now:
            return cached[0]
        role = self._store.token_role(token)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (role, now + _CACHE_SECONDS)
        return role


def require(permission: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency that admits tokens whose role grants ``permission``."""

    def dependency(request: Request) -> Principal:
        auth: TokenAuth = request.app.state.auth
        principal = auth.authenticate(request.headers.get("authorization"))
        if permission not in GRANTS[principal.role]:
            allowed = [r for r, grants in GRANTS.items() if permission in grants]
            article = "an" if principal.role[0] in "aeiou" else "a"
            raise AuthError(
                f"{article} {principal.role} token may not do this; it needs one of the roles: {', '.join(allowed)}",
                status=403,
            )
        return principal

    dependency.__name__ = f"require_{permission}"
    return dependency
