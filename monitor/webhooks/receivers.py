"""Receiver URL checks: http(s) only; private addresses only where the configuration allows.

One function, ``address_refusal``, decides whether an address may be posted to; the
configuration check calls it on literal addresses in receiver URLs, and the delivery
connection (``monitor.webhooks.connection``) calls it on every address a host name resolves
to, then connects to one of exactly those addresses.

Loopback is allowed when the URL names it (``127.0.0.1``, ``[::1]``, ``localhost``), for
receivers running next to mlwatch. A host name that resolves to loopback is treated as
private: a public name whose DNS answer turns into 127.0.0.1 must not reach local services.
IPv6 addresses that carry an IPv4 address (IPv4-mapped, 6to4, NAT64, Teredo) are judged by
the IPv4 address they carry, since that is where the packets end up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.webhooks.pagerduty import ROUTING_KEY
from monitor.webhooks.signing import secret_bytes

if TYPE_CHECKING:
    from monitor.config import Settings

Resolver = Callable[[str], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOCAL_NAMES = {"localhost", "localhost.localdomain"}
# Not globally reachable, spelled out because ``is_global`` differs between Python versions
# (3.11 calls 100.64.0.0/10 neither private nor global, and 2002::/16 global).
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b:1::/48", "2001::/23", "2001:db8::/32")
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_kind(address: str) -> str:
    """'loopback', 'private' (RFC 1918, CGNAT, link-local, ULA, reserved...) or 'public' for an IP address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return address_kind(str(ip.ipv4_mapped))
    carried = carried_ipv4(ip)
    if carried:
        return "public" if all(address_kind(str(v4)) == "public" for v4 in carried) else "private"
    if ip.is_loopback:
        return "loopback"
    if not ip.is_global or ip.is_multicast or ip.is_reserved or any(ip in net for net in _NOT_PUBLIC):
        return "private"
    return "public"


def carried_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses a 6to4, NAT64 (64:ff9b::/96) or Teredo address carries; () for any other."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return ()
    if ip.sixtofour:
        return (ip.sixtofour,)
    if ip.teredo:
        return ip.teredo  # (server, client): a packet reaches both
    if ip in _NAT64:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    return ()


def host_kind(host: str) -> str | None:
    """The kind of a literal IP or a local name; None for other host names (resolved at delivery)."""
    if host.lower() in _LOCAL_NAMES:
        return "loopback"
    try:
        return address_kind(host)
    except ValueError:
        return None


def address_refusal(host: str, address: str, allow_private: bool) -> str | None:
    """Why a connection for ``host`` to ``address`` (the host itself, or what it resolved to) is refused, or None."""
    kind = address_kind(address)
    if kind == "public" or allow_private or (kind == "loopback" and host_kind(host) == "loopback"):
        return None
    label = "a loopback" if kind == "loopback" else "a private network"
    what = f"{host} is {label} address" if host == address else f"{host} resolves to {address}, {label} address"
    return f"{what}; set allow_private_webhooks: true in mlwatch.yaml to send webhooks inside your network"


def refusal(url: str, allow_private: bool) -> str | None:
    """Why ``url`` may not be configured, judged without DNS: literal addresses only (names are checked at delivery)."""
    host = urlsplit(url).hostname or ""
    return address_refusal(host, host, allow_private) if is_ip_literal(host) else None


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address written out, False for a host name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
        _check_routing_key(i, hook.routing_key_env, env)
        _check_password(i, hook.email.password_env if hook.email else None, env)


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


def _check_routing_key(index: int, name: str | None, env: Mapping[str, str]) -> None:
    if not name:
        return
    value = env.get(name)
    if not value:
        raise ConfigError(
            f"webhooks[{index}].routing_key_env: environment variable {name} is not set; export it with the "
            "32-character Integration Key of the PagerDuty service's Events API v2 integration"
        )
    if not ROUTING_KEY.match(value):
        raise ConfigError(
            f"webhooks[{index}].routing_key_env: the value of {name} is not a PagerDuty Integration Key: "
            f"expected 32 letters and digits, got {len(value)} characters"
        )


def _check_password(index: int, name: str | None, env: Mapping[str, str]) -> None:
    if name and not env.get(name):
        raise ConfigError(
            f"webhooks[{index}].email.password_env: environment variable {name} is not set; "
            "export it with the password of email.username on the SMTP server"
        )
