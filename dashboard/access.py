"""Who may use the dashboard: configured users with hashed passwords, or API tokens.

Password hashes are made by ``mlwatch user hash`` and stored in ``users[].password_hash``
of ``mlwatch.yaml``. The format is the standard library's scrypt with its parameters
spelled out, so a hash stays verifiable if the defaults change::

    scrypt$<n>$<r>$<p>$<salt, base64>$<key, base64>

    >>> stored = hash_password("s3cret")
    >>> verify_password("s3cret", stored)
    True

Plain Python (no Streamlit), so the CLI and the tests use it directly.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from monitor.config import Settings
from monitor.errors import AuthError
from monitor.store import Store

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_KEY_BYTES = 32
ACTION_ROLES = frozenset({"operator", "admin"})
DASHBOARD_ROLES = frozenset({"viewer", "operator", "admin"})
SESSION_COOKIE = "mlwatch_session"
SESSION_SECONDS = 8 * 3600
"""How long a browser stays signed in across reloads (the dashboard process restarting ends it sooner)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """A logged-in person: the name written to the audit log and their role."""

    name: str
    role: str

    @property
    def can_act(self) -> bool:
        """True when the role may retrain, promote, roll back, acknowledge and silence."""
        return self.role in ACTION_ROLES


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Hash ``password`` with scrypt and a random salt, in the documented text format."""
    if not password:
        raise ValueError("password: expected a non-empty password")
    salt = salt or secrets.token_bytes(16)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(key)])


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; a malformed hash never matches."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, key = base64.b64decode(parts[4]), base64.b64decode(parts[5])
        candidate = _scrypt(password, salt, n, r, p)
    except ValueError:
        return False
    return hmac.compare_digest(candidate, key)


def authenticate(settings: Settings, store: Store, username: str, secret: str) -> Viewer:
    """The viewer for a username and password, or (username empty) an API token; AuthError otherwise."""
    if username.strip():
        return _user_login(settings, username.strip(), secret)
    return _token_login(settings, store, secret.strip())


def _user_login(settings: Settings, username: str, password: str) -> Viewer:
    user = next((u for u in settings.users if u.username == username), None)
    # Verify against a dummy hash for unknown users too, so timing does not reveal who exists.
    if not verify_password(password, user.password_hash if user else _dummy_hash()) or user is None:
        raise AuthError("unknown user or wrong password")
    return Viewer(user.username, user.role)


def _token_login(settings: Settings, store: Store, token: str) -> Viewer:
    if not token:
        raise AuthError("enter a username and password, or an API token (see `mlwatch token create`)")
    if settings.bootstrap_token and hmac.compare_digest(token.encode(), settings.bootstrap_token.encode()):
        return Viewer("bootstrap", "admin")
    role = store.token_role(token)
    if role is None:
        raise AuthError("invalid or revoked token")
    if role not in DASHBOARD_ROLES:
        raise AuthError(f"an {role} token cannot open the dashboard; use a viewer, operator or admin token", status=403)
    return Viewer(f"token:{token[:8]}", role)


def session_cookie(viewer: Viewer, key: bytes, now: float) -> str:
    """A signed value that lets the browser that holds it back in as ``viewer`` until it expires.

    ``<payload>.<HMAC-SHA256 of payload>``, both base64url without padding; the payload names
    the viewer, their role and the expiry, and carries no password or token.
    """
    fields = {"n": viewer.name, "r": viewer.role, "e": int(now) + SESSION_SECONDS}
    payload = _b64url(json.dumps(fields, separators=(",", ":")).encode())
    return f"{payload}.{_sign(key, payload)}"


def viewer_from_cookie(value: object, key: bytes, now: float) -> Viewer | None:
    """The viewer a cookie from ``session_cookie`` names, or None when it is missing, forged or expired."""
    if not isinstance(value, str):
        return None
    payload, _, signature = value.partition(".")
    if not payload or not hmac.compare_digest(signature.encode(), _sign(key, payload).encode()):
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        name, role, expires = str(fields["n"]), str(fields["r"]), float(fields["e"])
    except (ValueError, KeyError, TypeError):
        return None
    return Viewer(name, role) if now < expires and role in DASHBOARD_ROLES else None


def _sign(key: bytes, payload: str) -> str:
    return _b64url(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=_KEY_BYTES)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a real password", salt=b"mlwatch-dummy-salt")
