"""The SMTP transport of ``email`` receivers: STARTTLS or implicit TLS, AUTH, to checked addresses only.

    >>> SmtpTransport(AddressGuard(allow_private=False), os.environ).send(receiver, delivery)
    Answer(status_code=250, ...)

``smtp://host:port`` (default port 587) must offer STARTTLS, so credentials and alerts never
cross the network in clear; ``smtps://host:port`` (default 465) speaks TLS from the first byte.
The socket goes to an address the guard checked, as HTTP deliveries do, while TLS verifies
the certificate against the URL's host name.

Which answers are worth another try follows SMTP's own classes (RFC 5321, 4.2.1): a 4xx
reply is transient (421 service closing, 450/451/452 try later, 454 temporary auth failure)
and is retried, as are a lost connection and a timeout; a 5xx reply is permanent (535
authentication failed, 550 mailbox unavailable, 554 transaction failed) and fails the
delivery at once with the server's words in the log, since the same message with the same
credentials would be refused again. A server that offers no STARTTLS, or no AUTH while
credentials are configured, is a configuration problem: final too.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from monitor.webhooks.connection import AddressGuard, AddressRefused
from monitor.webhooks.mail import message_of
from monitor.webhooks.transports import Answer, elapsed_ms

if TYPE_CHECKING:
    from email.message import EmailMessage

    from monitor.config import EmailConfig, WebhookConfig
    from monitor.store.outbox import Delivery

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


class GuardedSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` whose TCP connection goes only to an address the guard allowed."""

    def __init__(self, guard: AddressGuard, timeout: float, context: ssl.SSLContext) -> None:
        self.guard = guard
        self.context = context  # STARTTLS's (and SMTP_SSL's wrap) context
        super().__init__(timeout=timeout)

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None) -> tuple[int, bytes]:
        """Connect to ``host``; TLS later verifies against this name, not the address connected to."""
        self._host = host
        return super().connect(host, port, source_address)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        addresses = self.guard.addresses(host)
        each = timeout / len(addresses)  # one shared connect timeout, as GuardedBackend does
        failure: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((address, port), each)
            except OSError as exc:
                failure = exc
        assert failure is not None
        raise failure


class GuardedSMTPS(smtplib.SMTP_SSL, GuardedSMTP):
    """Implicit TLS (``smtps://``) over a guarded TCP connection: SMTP_SSL wraps what GuardedSMTP connects."""

    def __init__(self, guard: AddressGuard, timeout: float, context: ssl.SSLContext) -> None:
        GuardedSMTP.__init__(self, guard, timeout, context)


class SmtpTransport:
    """Sends the stored message of an ``email`` receiver in one SMTP session per attempt.

    ``ssl_context`` defaults to the system's trust store with host-name checks; tests pass
    one that trusts their own CA.
    """

    def __init__(
        self, guard: AddressGuard, environ: Mapping[str, str], *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.guard = guard
        self.environ = environ
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, hook: WebhookConfig, delivery: Delivery) -> Answer:
        """One SMTP session: connect, secure, log in, send; every failure becomes an Answer."""
        assert hook.email is not None  # config load requires it for format email
        password = self.environ.get(hook.email.password_env) if hook.email.password_env else None
        if hook.email.password_env and not password:
            reason = f"environment variable {hook.email.password_env} (the SMTP password) is not set"
            return Answer(None, None, reason, 0.0)  # retried, so setting the variable is enough
        try:
            message = message_of(hook.email, delivery)
        except (ValueError, KeyError, TypeError) as exc:  # a body no format wrote: it would fail again
            reason = f"the stored message cannot be sent: {type(exc).__name__}: {exc}"[:500]
            return Answer(None, None, reason, 0.0, final=True)
        return self._deliver(hook, message, password)

    def _deliver(self, hook: WebhookConfig, message: EmailMessage, password: str | None) -> Answer:
        """The session's outcome: 250, an SMTP reply judged by its class, or a failure to get one."""
        started = time.perf_counter()
        try:
            refused = self._session(hook, message, password)
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused_recipients(exc.recipients, started)
        except smtplib.SMTPResponseException as exc:
            return _reply(exc.smtp_code, exc.smtp_error, started)
        except AddressRefused as exc:
            return Answer(None, None, f"refused: {exc}", elapsed_ms(started), final=True)
        except smtplib.SMTPNotSupportedError as exc:
            return Answer(None, None, f"SMTP server: {exc}", elapsed_ms(started), final=True)
        except (smtplib.SMTPException, OSError, httpx.ConnectError) as exc:  # lost connection, timeout, TLS, DNS
            return Answer(None, None, f"{type(exc).__name__}: {exc}"[:500], elapsed_ms(started))
        note = f"refused by the server for: {_recipients(refused)}" if refused else None
        return Answer(250, None, note, elapsed_ms(started))

    def _session(self, hook: WebhookConfig, message: EmailMessage, password: str | None) -> dict[str, Any]:
        assert hook.email is not None
        parts = urlsplit(hook.url)
        client = GuardedSMTPS if parts.scheme == "smtps" else GuardedSMTP
        with client(self.guard, hook.timeout, self.ssl_context) as smtp:
            smtp.connect(parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme])
            if parts.scheme == "smtp":
                _start_tls(smtp, self.ssl_context)
            _log_in(smtp, hook.email, password)
            return smtp.send_message(message, from_addr=hook.email.sender, to_addrs=list(hook.email.to))

    def close(self) -> None:
        """Nothing is pooled: each attempt is its own SMTP session."""


def _start_tls(smtp: smtplib.SMTP, context: ssl.SSLContext) -> None:
    smtp.ehlo()
    if not smtp.has_extn("starttls"):
        raise smtplib.SMTPNotSupportedError(
            "it does not offer STARTTLS, and mlwatch does not send mail in clear; "
            "use an smtps:// URL if the server speaks TLS on connect"
        )
    smtp.starttls(context=context)
    smtp.ehlo()


def _log_in(smtp: smtplib.SMTP, email: EmailConfig, password: str | None) -> None:
    if email.username is None:
        return
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("it offers no AUTH, but email.username is configured")
    smtp.login(email.username, password or "")


def _reply(code: int, text: bytes | str, started: float) -> Answer:
    """An SMTP error reply: 4xx is tried again, 5xx is final."""
    return Answer(code, None, f"SMTP {code}: {_text(text)}"[:500], elapsed_ms(started), final=code >= 500)


def _refused_recipients(recipients: dict[str, tuple[int, bytes]], started: float) -> Answer:
    """Every recipient refused: final when all refusals are permanent, else retried."""
    code = max(c for c, _ in recipients.values())
    transient = any(400 <= c < 500 for c, _ in recipients.values())
    reason = f"SMTP {code}: every recipient refused: {_recipients(recipients)}"[:500]
    return Answer(code, None, reason, elapsed_ms(started), final=not transient)


def _recipients(refused: Mapping[str, Any]) -> str:
    return "; ".join(f"{rcpt} ({code} {_text(words)})" for rcpt, (code, words) in refused.items())


def _text(words: bytes | str) -> str:
    return words.decode(errors="replace") if isinstance(words, bytes) else words
