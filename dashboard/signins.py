"""Dashboard sign-ins: a random secret in an HttpOnly cookie, the session it names in the store.

The cookie is ``<secret>.<HMAC-SHA256 of secret>`` (base64url); the store keeps the
session under the SHA-256 of the secret (``monitor.store.sessions``). Every request and
every Streamlit run looks the session up again, so a sign-in ends at once when:

- its browser logs out (the session row is deleted),
- its API token is revoked or changes role (the lookup joins the token),
- its user leaves ``mlwatch.yaml``, changes role or gets a new password hash,
- or 8 hours pass.

The signing key is ``dashboard_secret`` (``MLWATCH_DASHBOARD_SECRET``). The session row
is what makes a sign-in real; the signature makes a cookie of another deployment, or a
guessed one, fail before the store is asked. Replicas with one key and one store share
sign-ins, and a restart keeps them. Without a key each process draws a random one and
says so: fine for ``mlwatch demo``, but a restart then signs everyone out.

    >>> signins = SignIns(store, lambda: settings, session_key(settings))
    >>> cookie = signins.sign_in(authenticate(settings, store, "olga", "s3cret"))
    >>> signins.viewer(cookie)
    Viewer(name='olga', role='operator')
    >>> signins.sign_out(cookie)
    True
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable

from dashboard.access import DASHBOARD_ROLES, Credential, Viewer, bootstrap_credential, user_credential
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.store import Store
from monitor.store.sessions import DashboardSession

SESSION_COOKIE = "mlwatch_session"
SESSION_SECONDS = 8 * 3600
"""How long a sign-in lasts without a log-out."""
MIN_SECRET_CHARS = 32
log = logging.getLogger("mlwatch.dashboard")


class SignIns:
    """Opens, checks and ends the dashboard's server-side sessions."""

    def __init__(
        self, store: Store, settings: Callable[[], Settings], key: bytes, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.settings = settings  # called on each check: users may have changed in mlwatch.yaml
        self.key = key
        self.clock = clock

    def sign_in(self, viewer: Viewer) -> str:
        """Open a session for ``viewer`` (as ``authenticate`` returned it); the cookie value naming it."""
        if viewer.credential is None:
            raise ValueError("viewer: expected one from authenticate(), which says what it signed in with")
        secret, now = secrets.token_urlsafe(32), self.clock()
        credential = viewer.credential
        record = DashboardSession(
            _digest(secret), viewer.name, viewer.role, credential.kind, credential.digest, now, now + SESSION_SECONDS
        )
        self.store.open_dashboard_session(record)
        return f"{secret}.{self._sign(secret)}"

    def viewer(self, cookie: object) -> Viewer | None:
        """The viewer of a live session named by ``cookie``; None when missing, forged, ended or expired."""
        secret = self._verified(cookie)
        if secret is None:
            return None
        found = self.store.dashboard_session(_digest(secret), self.clock())
        if found is None or found.role not in DASHBOARD_ROLES or not holds(self.settings(), found):
            return None
        return Viewer(found.viewer, found.role, Credential(found.kind, found.credential))

    def sign_out(self, cookie: object) -> bool:
        """End the session named by ``cookie``; True when there was one."""
        secret = self._verified(cookie)
        return secret is not None and self.store.end_dashboard_session(_digest(secret))

    def _verified(self, cookie: object) -> str | None:
        if not isinstance(cookie, str):
            return None
        secret, _, signature = cookie.partition(".")
        if not secret or not hmac.compare_digest(signature.encode(), self._sign(secret).encode()):
            return None
        return secret

    def _sign(self, secret: str) -> str:
        digest = hmac.new(self.key, secret.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def holds(settings: Settings, session: DashboardSession) -> bool:
    """True while what opened ``session`` still grants its role (tokens: the store checked already)."""
    if session.kind == "user":
        user = next((u for u in settings.users if u.username == session.viewer), None)
        return user is not None and user.role == session.role and user_credential(user).digest == session.credential
    if session.kind == "bootstrap":
        token = settings.bootstrap_token
        same = token is not None and bootstrap_credential(token).digest == session.credential
        return same and session.role == "admin"
    return session.kind == "token"


def session_key(settings: Settings) -> bytes:
    """The key that signs session cookies: ``dashboard_secret``, else one random key per process (with a warning)."""
    secret = settings.dashboard_secret
    if secret is None:
        return _process_key()
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"dashboard_secret: expected at least {MIN_SECRET_CHARS} characters, got {len(secret)}; "
            "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return secret.encode()


@functools.cache
def _process_key() -> bytes:
    log.warning(
        "dashboard_secret is not set: dashboard sign-ins last only as long as this process and are not "
        "shared with other replicas. Set MLWATCH_DASHBOARD_SECRET (the same on every replica), e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
    return secrets.token_bytes(32)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
