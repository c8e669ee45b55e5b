"""The delivery connection: resolve a receiver's host once, check every address, connect to a checked one.

    >>> http = httpx.Client(transport=GuardedTransport(AddressGuard(allow_private=False)))

Checking a name and then letting the HTTP client resolve it again leaves a gap a DNS answer
can change in (DNS rebinding: public at the check, 127.0.0.1 at the connection). Here the
check and the connection share one answer: ``GuardedBackend`` replaces only the TCP connect
of httpcore, so the socket goes to an address that ``address_refusal`` allowed, while TLS
(SNI and certificate verification) and the ``Host`` header still use the URL's host name.
Every new connection is checked, so a pooled keep-alive connection was checked when opened.

    httpx.ConnectError
    └── AddressRefused     an address of the receiver is not allowed (not retried)
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpcore
import httpx

from monitor.webhooks.receivers import Resolver, address_refusal, is_ip_literal

MAX_ANSWER_BYTES = 64 * 1024  # a receiver's answer is logged (200 characters), never needed whole
_SOCKET_OPTIONS = Iterable[tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]]


class AddressRefused(httpx.ConnectError):
    """The receiver's host is, or resolves to, an address deliveries may not go to."""


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order; [] when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressGuard:
    """Resolves a host once and returns the addresses a delivery may connect to."""

    def __init__(self, allow_private: bool, resolve: Resolver = resolve_host) -> None:
        self._allow_private = allow_private
        self._resolve = resolve

    def addresses(self, host: str) -> list[str]:
        """The checked addresses of ``host``; AddressRefused if any is refused, ConnectError if there are none."""
        found = [host] if is_ip_literal(host) else self._resolve(host)
        if not found:
            raise httpx.ConnectError(f"{host} does not resolve to any address")
        for address in found:
            why = address_refusal(host, address, self._allow_private)
            if why:
                raise AddressRefused(why)
        return found


class GuardedBackend(httpcore.NetworkBackend):
    """An httpcore network backend whose TCP connections go only to addresses the guard allowed."""

    def __init__(self, guard: AddressGuard, inner: httpcore.NetworkBackend | None = None) -> None:
        self._guard = guard
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _SOCKET_OPTIONS | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to the first checked address of ``host`` that answers."""
        addresses = self._guard.addresses(host)
        # the connect timeout is shared, so a name with many dead addresses costs one timeout, not one each
        each = None if timeout is None else timeout / len(addresses)
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, each, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: _SOCKET_OPTIONS | None = None
    ) -> httpcore.NetworkStream:
        """Refused: receivers are reached over TCP only."""
        raise AddressRefused(f"unix socket {path} refused: webhook receivers are reached over TCP")

    def sleep(self, seconds: float) -> None:
        """Sleep as the inner backend does (httpcore's retries)."""
        self._inner.sleep(seconds)


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport over a connection pool of guarded connections; no proxies, no Unix sockets."""

    def __init__(
        self,
        guard: AddressGuard,
        *,
        ssl_context: ssl.SSLContext | None = None,
        network: httpcore.NetworkBackend | None = None,
        max_connections: int = 64,
    ) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(guard, network),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read at most ``MAX_ANSWER_BYTES`` of the answer."""
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors(request):
            answer = self._pool.handle_request(core)
            try:
                body = _read_capped(answer.stream)  # type: ignore[arg-type]  # a sync pool's streams iterate
            finally:
                answer.close()
        return httpx.Response(answer.status, headers=answer.headers, content=body, extensions=answer.extensions)

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()


def _read_capped(stream: Iterable[bytes]) -> bytes:
    body = bytearray()
    for chunk in stream:
        body += chunk
        if len(body) >= MAX_ANSWER_BYTES:
            break  # closing an unread answer closes its connection instead of pooling it
    return bytes(body[:MAX_ANSWER_BYTES])


_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


_CORE_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol)


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """httpcore's exceptions as the httpx ones callers catch (what ``httpx.HTTPTransport`` does too)."""
    try:
        yield
    except _CORE_ERRORS as exc:
        mapped = next((ours for theirs, ours in _ERRORS if isinstance(exc, theirs)), httpx.TransportError)
        raise mapped(str(exc), request=request) from exc
