"""Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over ``id.timestamp.body``.

>>> headers = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "evt_1", 1700000000, b'{"a":1}')
>>> verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, b'{"a":1}', now=1700000010)
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

TOLERANCE_SECONDS = 300


def secret_bytes(secret: str) -> bytes:
    """The key of a secret, read exactly as the official Standard Webhooks libraries read one:
    base64, after an optional ``whsec_`` prefix, with or without its padding.

    A secret written as plain text is therefore base64 too (``Webhook("hunter2")`` in the
    official library decodes it), so a receiver verifying with that library and the same text
    agrees with mlwatch. Text that is not base64 at all is refused rather than guessed at.
    """
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(
            "a webhook secret is base64 (Standard Webhooks), optionally after whsec_; "
            "generate one with `echo whsec_$(openssl rand -base64 32)`"
        ) from exc
    if not key:
        raise ValueError("a webhook secret may not be empty; generate one with `echo whsec_$(openssl rand -base64 32)`")
    return key


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(secret: str | None, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and (with a secret) ``webhook-signature`` headers."""
    headers = {"webhook-id": event_id, "webhook-timestamp": str(timestamp)}
    if secret:
        headers["webhook-signature"] = signature(secret, event_id, timestamp, body)
    return headers


def verify(
    secret: str, headers: dict[str, str], body: bytes, *, now: float, tolerance: float = TOLERANCE_SECONDS
) -> bool:
    """True when one of the space-separated ``v1,`` signatures matches and the timestamp is recent."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lower["webhook-timestamp"])
        expected = signature(secret, lower["webhook-id"], timestamp, body)
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    offered = lower.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, s) for s in offered)
