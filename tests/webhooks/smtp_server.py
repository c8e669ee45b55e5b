"""A real SMTP server for tests: aiosmtpd on a loopback port, with STARTTLS (or implicit TLS) and AUTH."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

USER, PASSWORD = "mlwatch", "correct horse battery staple"
HOST = "localhost"  # the name the test CA's certificate is issued for


@dataclass(frozen=True)
class Received:
    """One message as the server took it, with how the session was secured."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None


@dataclass
class Inbox:
    """The server's handler: keeps messages, or answers DATA with the next scripted reply."""

    messages: list[Received] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        login = str(session.auth_data) if session.authenticated else None
        self.messages.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, session.ssl is not None, login)
        )
        return "250 2.0.0 Message accepted for delivery"


def authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    """Accepts ``USER`` with ``PASSWORD`` and nobody else (aiosmtpd then answers 535)."""
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=USER if ok else None)


class SmtpServer:
    """aiosmtpd on ``127.0.0.1:port``: STARTTLS required before AUTH and mail when ``context`` is
    given, or TLS from the first byte with ``implicit=True``; ``auth=False`` offers no AUTH."""

    def __init__(self, port: int, context: ssl.SSLContext | None, *, implicit: bool = False, auth: bool = True) -> None:
        self.port = port
        self.inbox = Inbox()
        kwargs: dict[str, Any] = {"authenticator": authenticate, "auth_require_tls": True} if auth else {}
        if implicit:  # aiosmtpd's auth_require_tls counts STARTTLS only; this session is TLS from the start
            kwargs.update(ssl_context=context, auth_require_tls=False)
        elif context is not None:
            kwargs.update(tls_context=context, require_starttls=True)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port, server_hostname=HOST, **kwargs)
        self.controller.start()

    @property
    def url(self) -> str:
        return f"{'smtps' if self.controller.ssl_context else 'smtp'}://{HOST}:{self.port}"

    def stop(self) -> None:
        self.controller.stop()
