"""The delivery connection goes only to checked addresses, whatever DNS answers next."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

import httpcore
import httpx
import pytest

from monitor.config import Settings, WebhookConfig
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.store import Store
from monitor.webhooks.connection import AddressGuard, GuardedTransport
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import emit
from monitor.webhooks.receivers import address_kind
from tests.webhooks.receiver import SECRET, Clock, Receiver
from tests.webhooks.tls import CertAuthority

ENV = {"HOOK_SECRET": SECRET}
REFUSED = [
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "100.100.100.200",  # a cloud metadata address inside 100.64.0.0/10
    "2002:a9fe:a9fe::1",  # 6to4 carrying 169.254.169.254
    "2002:7f00:1::1",  # 6to4 carrying 127.0.0.1
    "2002:a00:1::1",  # 6to4 carrying 10.0.0.1
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:a00:1",  # IPv4-mapped 10.0.0.1, written in hex
    "64:ff9b::a9fe:a9fe",  # NAT64 carrying 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 carrying 127.0.0.1
    "64:ff9b:1::a00:1",  # local-use NAT64 prefix
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo whose client is 192.0.2.45
    "fd00::1",
    "169.254.169.254",
]
PUBLIC = ["8.8.8.8", "2002:808:808::1", "64:ff9b::808:808", "2606:4700:4700::1111"]


class Answers:
    """A resolver that gives its answers in turn (the last one again once they run out) and counts calls."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


class Network(httpcore.NetworkBackend):
    """A network where ``dns`` names the hosts, loopback is this machine and nothing else answers."""

    def __init__(self, dns: Answers) -> None:
        self.dns = dns
        self.connects: list[str] = []
        self.real = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple[int, int, int]] | None = None,  # type: ignore[override]
    ) -> httpcore.NetworkStream:
        self.connects.append(host)
        address = host if _is_address(host) else self.dns(host)[0]
        if address_kind(address) != "loopback":
            raise httpcore.ConnectError(f"{address} is unreachable from here")
        return self.real.connect_tcp(address, port, timeout, local_address)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url(address: str, port: int = 80) -> str:
    return f"http://{f'[{address}]' if ':' in address else address}:{port}/hook"


def _settings(url: str, allow_private: bool = False) -> Settings:
    hook = WebhookConfig(name="ops", url=url, secret_env="HOOK_SECRET", timeout=0.5, backoff_initial=1.0)
    return Settings(webhooks=(hook,), allow_private_webhooks=allow_private)


def _deliver_once(store: Store, settings: Settings, guard: AddressGuard, http: httpx.Client | None = None) -> None:
    emit(store, settings, "test", {})
    Deliverer(store, settings, clock=Clock(), environ=ENV, guard=guard, http=http).run_once()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Store:
    return Store.open(sqlite_url)


@pytest.mark.parametrize("address", REFUSED)
def test_private_and_v4_carrying_addresses_are_refused_in_the_config(tmp_path: Path, address: str) -> None:
    path = tmp_path / "mlwatch.yaml"
    path.write_text(f"webhooks:\n  - {{name: ops, url: '{_url(address)}'}}\n")
    with pytest.raises(ConfigError, match=rf"webhooks\[0\]\.url: {address} is a private network address"):
        load_settings(path, environ={})


@pytest.mark.parametrize("address", REFUSED)
def test_private_and_v4_carrying_addresses_are_refused_at_delivery(sqlite_store: Store, address: str) -> None:
    dns = Answers([address])
    _deliver_once(sqlite_store, _settings("http://hooks.example.test/hook"), AddressGuard(False, dns))
    (row,) = sqlite_store.list_deliveries()
    assert row.status == "failed" and dns.calls == ["hooks.example.test"]
    assert f"refused: hooks.example.test resolves to {address}, a private network address" in (row.last_error or "")


@pytest.mark.parametrize("address", REFUSED)
def test_literal_private_addresses_are_refused_at_delivery_without_a_lookup(sqlite_store: Store, address: str) -> None:
    dns = Answers()
    _deliver_once(sqlite_store, _settings(_url(address)), AddressGuard(False, dns))  # Settings skip the config check
    (row,) = sqlite_store.list_deliveries()
    assert row.status == "failed" and dns.calls == []
    assert f"refused: {address} is a private network address" in (row.last_error or "")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_and_v6_forms_carrying_public_v4_are_public(address: str) -> None:
    assert address_kind(address) == "public"


def test_one_private_address_among_the_answers_refuses_the_delivery(sqlite_store: Store) -> None:
    dns = Answers(["8.8.8.8", "10.9.8.7"])
    _deliver_once(sqlite_store, _settings("http://hooks.example.test/hook"), AddressGuard(False, dns))
    (row,) = sqlite_store.list_deliveries()
    assert row.status == "failed" and "resolves to 10.9.8.7, a private network address" in (row.last_error or "")


def test_dns_rebinding_to_loopback_cannot_reach_the_loopback_receiver(sqlite_store: Store, receiver: Receiver) -> None:
    dns = Answers(["93.184.216.34"], ["127.0.0.1"])  # public when checked, loopback when asked again
    network = Network(dns)
    guard = AddressGuard(False, dns)
    http = httpx.Client(transport=GuardedTransport(guard, network=network))
    settings = _settings(f"http://rebind.example.test:{receiver.port}/hook")
    emit(sqlite_store, settings, "test", {})
    clock = Clock()
    deliverer = Deliverer(sqlite_store, settings, clock=clock, environ=ENV, guard=guard, http=http)
    deliverer.run_once()
    assert network.connects == ["93.184.216.34"] and len(dns.calls) == 1  # connected to the address checked
    assert sqlite_store.list_deliveries()[0].status == "pending"  # unreachable: retried later
    clock.advance(60)
    deliverer.run_once()
    (row,) = sqlite_store.list_deliveries()
    assert receiver.received == [] and network.connects == ["93.184.216.34"]
    assert row.status == "failed" and "rebind.example.test resolves to 127.0.0.1, a loopback address" in (
        row.last_error or ""
    )


def test_a_named_receiver_is_reached_at_its_checked_address_with_its_host_header(
    sqlite_store: Store, receiver: Receiver
) -> None:
    dns = Answers(["127.0.0.1"])
    settings = _settings(f"http://receiver.test:{receiver.port}/hook", allow_private=True)
    _deliver_once(sqlite_store, settings, AddressGuard(True, dns))
    (got,) = receiver.received
    assert got.signature_ok and got.headers["host"] == f"receiver.test:{receiver.port}"
    assert sqlite_store.list_deliveries()[0].status == "delivered"


def test_literal_loopback_receivers_are_delivered_to_without_allowing_private(
    sqlite_store: Store, receiver: Receiver
) -> None:
    _deliver_once(sqlite_store, _settings(receiver.url), AddressGuard(False, Answers()))
    assert [r.signature_ok for r in receiver.received] == [True]


def test_https_delivery_verifies_the_certificate_of_the_host_name_not_the_address(
    sqlite_store: Store, tmp_path: Path
) -> None:
    ca = CertAuthority.create(tmp_path)
    receiver = Receiver(tls=ca.server_context("receiver.test"))
    try:
        guard = AddressGuard(True, Answers(["127.0.0.1"]))
        http = httpx.Client(transport=GuardedTransport(guard, ssl_context=ca.client_context()))
        _deliver_once(sqlite_store, _settings(f"https://receiver.test:{receiver.port}/hook"), guard, http)
        assert receiver.sni == ["receiver.test"] and len(receiver.received) == 1
        assert receiver.received[0].headers["host"] == f"receiver.test:{receiver.port}"
        _deliver_once(sqlite_store, _settings(f"https://other.test:{receiver.port}/hook"), guard, http)
        assert len(receiver.received) == 1
        newest = sqlite_store.list_deliveries()[0]
        assert newest.status == "pending" and "certificate" in (newest.last_error or "").lower()
    finally:
        receiver.stop()
