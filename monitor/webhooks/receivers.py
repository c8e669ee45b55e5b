"""Receiver URL checks: http(s) only; private addresses only where the configuration allows.

Loopback is always allowed, for receivers running next to mlwatch. Hostnames are checked
again when a delivery is made (``AddressGuard``), after DNS resolution, so a name that
points at a private network is refused the same way as a literal address.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.webhooks.signing import secret_bytes

if TYPE_CHECKING:
    from monitor.config import Settings

Resolver = Callable[[str], list[str]]
_LOCAL_NAMES = {"localhost", "localhost.localdomain"}


def check_url_syntax(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host; raise ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"expected an http:// or https:// URL, got scheme {parts.scheme or '(none)'!r}")
    if not parts.hostname:
        raise ValueError(f"expected a URL with a host name, got {url!r}")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid port in {url!r}: {exc}") from exc
    return url


def address_kind(address: str) -> str:
    """'loopback', 'private' (RFC 1918, link-local, ULA, reserved...) or 'public' for an IP address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return "private"
    return "public"


def host_kind(host: str) -> str | None:
    """The kind of a literal IP or a local name; None for other host names (resolved at delivery)."""
    if host.lower() in _LOCAL_NAMES:
        return "loopback"
    try:
        return address_kind(host)
    except ValueError:
        return None


def refusal(url: str, allow_private: bool, resolve: Resolver | None = None) -> str | None:
    """Why ``url`` may not be posted to, or None when it may."""
    host = urlsplit(url).hostname or ""
    kinds = {host_kind(host)}
    if kinds == {None} and resolve is not None:
        kinds = {address_kind(a) for a in resolve(host)}
    if "private" in kinds and not allow_private:
        return (
            f"{host} is a private network address; set allow_private_webhooks: true in mlwatch.yaml "
            "to send webhooks inside your network"
        )
    return None


def check_receivers(settings: Settings, env: Mapping[str, str]) -> None:
    """Raise ConfigError naming ``webhooks[i].<key>`` for a refused URL, a missing secret or a clash."""
    seen: set[str] = set()
    for i, hook in enumerate(settings.webhooks):
        if hook.name in seen:
            raise ConfigError(f"webhooks[{i}].name: duplicate receiver name {hook.name!r}; names must be unique")
        seen.add(hook.name)
        why = refusal(hook.url, settings.allow_private_webhooks)
        if why:
            raise ConfigError(f"webhooks[{i}].url: {why}")
        _check_secret(i, hook.secret_env, env)


def _check_secret(index: int, name: str | None, env: Mapping[str, str]) -> None:
    if not name:
        return
    if not env.get(name):
        raise ConfigError(
            f"webhooks[{index}].secret_env: environment variable {name} is not set; "
            "export it with the signing secret (for example whsec_<base64>)"
        )
    try:
        secret_bytes(env[name])
    except ValueError as exc:
        raise ConfigError(f"webhooks[{index}].secret_env: the value of {name} is not a valid secret: {exc}") from exc


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return []  # the request itself will fail and be retried with this error
    return sorted({str(info[4][0]) for info in infos})


class AddressGuard:
    """Checks a receiver URL before each delivery, caching DNS answers for a minute."""

    def __init__(
        self,
        allow_private: bool,
        resolve: Resolver = _resolve,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = 60.0,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[str | None, float]] = {}

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be posted to now, or None."""
        now = self._clock()
        cached = self._cache.get(url)
        if cached and cached[1] > now:
            return cached[0]
        why = refusal(url, self._allow_private, self._resolve)
        self._cache[url] = (why, now + self._ttl)
        return why
