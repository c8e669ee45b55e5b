"""How a delivery reaches its receiver: one transport per kind of URL, behind one method.

    >>> transports["http"].send(receiver, delivery)
    Answer(status_code=200, retry_after=None, error=None, latency_ms=12.5, final=False, started_at=None)

``HttpTransport`` posts signed bodies to ``http(s)://`` receivers; ``SmtpTransport``
(``smtp.py``) sends the messages of ``email`` receivers to ``smtp(s)://`` servers. Each
transport judges its own answers: ``final`` means that trying again would not help (an
address the SSRF rules refuse, an HTTP 400, an SMTP 535), so the deliverer applies one retry
policy and one attempt log without knowing which protocol answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import httpx

from monitor.webhooks.connection import AddressRefused
from monitor.webhooks.formats import finished_body
from monitor.webhooks.retry import is_retryable
from monitor.webhooks.signing import sign

if TYPE_CHECKING:
    from monitor.config import WebhookConfig
    from monitor.store.outbox import Delivery

TRANSPORT_OF_SCHEME = {"http": "http", "https": "http", "smtp": "smtp", "smtps": "smtp"}
"""The transport a receiver's URL scheme is delivered by."""
SMTP_ROUND_TRIPS = 8
"""Replies an SMTP session waits for (greeting, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA),
each within the receiver's ``timeout``: what a delivery's lease must outlast."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What a receiver answered: an HTTP status or SMTP reply code (None when no answer came)."""

    status_code: int | None
    retry_after: str | None
    error: str | None
    latency_ms: float
    final: bool = False  # not worth another try: the receiver refused the event, or it is refused to us
    started_at: float | None = None  # the clock when the attempt began

    @property
    def delivered(self) -> bool:
        """True for a 2xx answer (HTTP 200-299, SMTP 250)."""
        return self.status_code is not None and 200 <= self.status_code < 300


class Transport(Protocol):
    """Sends one outbox row to its receiver once."""

    def send(self, hook: WebhookConfig, delivery: Delivery) -> Answer:
        """One attempt; never raises for what the receiver or the network does."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def transport_name(url: str) -> str:
    """``http`` or ``smtp``: the transport that delivers to ``url`` (config load allows no other scheme)."""
    return TRANSPORT_OF_SCHEME[urlsplit(url).scheme]


def longest_attempt(hook: WebhookConfig) -> float:
    """The longest one attempt to ``hook`` can take: its timeout per reply it waits for."""
    return hook.timeout * (SMTP_ROUND_TRIPS if transport_name(hook.url) == "smtp" else 1)


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - started) * 1000


class HttpTransport:
    """POSTs the stored body with fresh Standard Webhooks headers over ``client``.

    ``client`` must bring the address guard (``GuardedTransport``); the deliverer's default does.
    """

    def __init__(self, client: httpx.Client, environ: Mapping[str, str], clock: Callable[[], float]) -> None:
        self.client = client
        self.environ = environ
        self.clock = clock

    def send(self, hook: WebhookConfig, delivery: Delivery) -> Answer:
        """Sign and post the row's body; a refused address is final, so are statuses retrying cannot change."""
        secret = self.environ.get(hook.secret_env) if hook.secret_env else None
        if hook.secret_env and not secret:
            return Answer(None, None, f"environment variable {hook.secret_env} (the signing secret) is not set", 0.0)
        try:
            body = finished_body(hook, delivery.payload, self.environ).encode()
        except ValueError as exc:  # a routing key not set: retried, so setting the variable is enough
            return Answer(None, None, str(exc), 0.0)
        try:
            signed = sign(secret, delivery.event_id, int(self.clock()), body)
        except ValueError as exc:  # a malformed whsec_ secret: retried, so fixing the variable is enough
            return Answer(None, None, f"{hook.secret_env}: {exc}", 0.0)
        return self._post(hook, body, {"content-type": "application/json", **signed})

    def _post(self, hook: WebhookConfig, body: bytes, headers: dict[str, str]) -> Answer:
        started = time.perf_counter()
        try:
            response = self.client.post(hook.url, content=body, headers=headers, timeout=hook.timeout)
        except AddressRefused as exc:
            return Answer(None, None, f"refused: {exc}", elapsed_ms(started), final=True)
        except httpx.HTTPError as exc:
            return Answer(None, None, f"{type(exc).__name__}: {exc}"[:500], elapsed_ms(started))
        code = response.status_code
        error = None if response.is_success else f"HTTP {code}: {response.text[:200]}"
        final = not response.is_success and not is_retryable(code)
        return Answer(code, response.headers.get("retry-after"), error, elapsed_ms(started), final=final)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()
