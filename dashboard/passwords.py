"""Password hashes of dashboard users: argon2id in PHC strings, and the scrypt ones made before.

``mlwatch user hash`` prints an argon2id hash with argon2-cffi's parameters (RFC 9106's
low-memory profile: 64 MiB, 3 passes, 4 lanes), the one OWASP recommends first; the
parameters travel in the string, so a hash stays verifiable when the defaults move::

    $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>

    >>> stored = hash_password("s3cret")
    >>> verify_password("s3cret", stored)
    True

Hashes of the earlier format (``scrypt$<n>$<r>$<p>$<salt>$<key>``, N=2^14, below OWASP's
2^17 floor) still verify, so no one is locked out by an upgrade, and ``needs_rehash`` says
so. Users live in ``mlwatch.yaml``, which the dashboard only reads (it may be a read-only
mount shared by replicas), so a rehash is not written back: a login with such a hash logs
a warning that tells the admin to replace it with the output of ``mlwatch user hash``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
_SCRYPT_PREFIX = "scrypt$"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Hash ``password`` with argon2id and a random salt (or ``salt``), as a PHC string."""
    if not password:
        raise ValueError("password: expected a non-empty password")
    return _HASHER.hash(password, salt=salt)


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (argon2id, or the earlier scrypt); a malformed hash never matches."""
    if stored.startswith(_SCRYPT_PREFIX):
        return _verify_scrypt(password, stored)
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when ``stored`` is scrypt, or argon2 with weaker parameters than ``hash_password`` uses now."""
    if stored.startswith(_SCRYPT_PREFIX):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 6:
        return False
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, key = base64.b64decode(parts[4]), base64.b64decode(parts[5])
        candidate = hashlib.scrypt(
            password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=len(key)
        )
    except ValueError:
        return False
    return hmac.compare_digest(candidate, key)
