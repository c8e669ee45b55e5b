"""Who may use the dashboard: configured users with hashed passwords, or API tokens.

Users are ``users[]`` of ``mlwatch.yaml`` with a hash from ``mlwatch user hash`` (see
``dashboard.passwords``). A login returns a ``Viewer`` that carries what it signed in with
as a ``Credential`` (a digest, never the secret), so that a session can later be checked
against it: a user removed or re-hashed, a token revoked, ends the sessions it opened.

    >>> who = authenticate(settings, store, "olga", "s3cret")
    >>> who.name, who.role
    ('olga', 'operator')

Plain Python (no Streamlit), so the CLI, the HTTP routes and the tests use it directly.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from dataclasses import dataclass, field

from dashboard.passwords import hash_password, needs_rehash, verify_password
from monitor.config import Settings, UserConfig
from monitor.errors import AuthError
from monitor.roles import roles_with
from monitor.store import Store
from monitor.store.services import hash_token

__all__ = ["Credential", "Viewer", "authenticate", "hash_password", "user_credential", "verify_password"]

ACTION_ROLES = frozenset(roles_with("operator"))
"""Roles that may retrain, promote, roll back, acknowledge and silence."""
DASHBOARD_ROLES = frozenset(roles_with("viewer"))
"""Roles that may open the dashboard."""
log = logging.getLogger("mlwatch.dashboard")


@dataclass(frozen=True, slots=True)
class Credential:
    """What a viewer signed in with: ``user``, ``token`` or ``bootstrap``, and the SHA-256 hex of it.

    For a user that is the digest of their password hash (so re-hashing the password ends
    their sessions), for a token the digest the store keeps of it.
    """

    kind: str
    digest: str


@dataclass(frozen=True, slots=True)
class Viewer:
    """A logged-in person: the name written to the audit log, their role, and how they signed in."""

    name: str
    role: str
    credential: Credential | None = field(default=None, compare=False, repr=False)

    @property
    def can_act(self) -> bool:
        """True when the role may retrain, promote, roll back, acknowledge and silence."""
        return self.role in ACTION_ROLES


def authenticate(settings: Settings, store: Store, username: str, secret: str) -> Viewer:
    """The viewer for a username and password, or (username empty) an API token; AuthError otherwise."""
    if username.strip():
        return _user_login(settings, username.strip(), secret)
    return _token_login(settings, store, secret.strip())


def user_credential(user: UserConfig) -> Credential:
    """The credential a login as ``user`` leaves in its session."""
    return Credential("user", _digest(user.password_hash))


def bootstrap_credential(token: str) -> Credential:
    """The credential a login with the bootstrap token leaves in its session."""
    return Credential("bootstrap", _digest(token))


def _user_login(settings: Settings, username: str, password: str) -> Viewer:
    user = next((u for u in settings.users if u.username == username), None)
    # Verify against a dummy hash for unknown users too, so timing does not reveal who exists.
    if not verify_password(password, user.password_hash if user else _dummy_hash()) or user is None:
        raise AuthError("unknown user or wrong password")
    if needs_rehash(user.password_hash):
        _warn_weak_hash(user.username)
    return Viewer(user.username, user.role, user_credential(user))


def _token_login(settings: Settings, store: Store, token: str) -> Viewer:
    if not token:
        raise AuthError("enter a username and password, or an API token (see `mlwatch token create`)")
    if settings.bootstrap_token and hmac.compare_digest(token.encode(), settings.bootstrap_token.encode()):
        return Viewer("bootstrap", "admin", bootstrap_credential(token))
    role = store.token_role(token)
    if role is None:
        raise AuthError("invalid or revoked token")
    if role not in DASHBOARD_ROLES:
        raise AuthError(f"an {role} token cannot open the dashboard; use a viewer, operator or admin token", status=403)
    return Viewer(f"token:{token[:8]}", role, Credential("token", hash_token(token)))


def _warn_weak_hash(username: str) -> None:
    log.warning(
        "dashboard user %r signed in with an old or weaker password hash in mlwatch.yaml; "
        "replace users[].password_hash with the output of `mlwatch user hash` (argon2id)",
        username,
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a real password", salt=b"mlwatch-dummy-salt")
