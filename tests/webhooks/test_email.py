"""The ``email`` receiver against a real SMTP server (aiosmtpd): STARTTLS, AUTH, both parts, retries, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.config import Settings, WebhookConfig
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.store import Store
from monitor.store.codec import loads
from monitor.store.outbox import OutboxEntry
from monitor.webhooks.connection import AddressGuard
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import Event, emit, enqueue
from monitor.webhooks.formats import render
from monitor.webhooks.mail import message_of, subject
from monitor.webhooks.smtp import SmtpTransport
from tests.conftest import free_port
from tests.webhooks.receiver import Clock
from tests.webhooks.smtp_server import PASSWORD, USER, SmtpServer
from tests.webhooks.tls import CertAuthority

ENV = {"SMTP_PASSWORD": PASSWORD}
SUMMARY = "credit: feature <script>alert(1)</script> & income drifted"
ALERT = {
    "id": 12,
    "rule": "income-drift",
    "kind": "feature_drift",
    "service": "credit",
    "state": "firing",
    "severity": "warning",
    "value": 0.4123,
    "threshold": 0.1,
    "summary": SUMMARY,
    "started_at": 1_790_000_000.0,
    "fingerprint": "fp-income",
    "labels": {"service": "credit", "feature": "income", "rule": "income-drift"},
}


@pytest.fixture
def ca(tmp_path: Path) -> CertAuthority:
    return CertAuthority.create(tmp_path)


@pytest.fixture
def smtp_server(ca: CertAuthority) -> Iterator[SmtpServer]:
    running = SmtpServer(free_port(), ca.server_context("localhost"))
    yield running
    running.stop()


def _hook(url: str, name: str = "mail", password_env: str = "SMTP_PASSWORD", **extra: object) -> WebhookConfig:
    email = {"from": "mlwatch@example.com", "to": ["oncall@example.com", "ml@example.com"]}
    fields = {"name": name, "url": url, "format": "email", "timeout": 5.0, "backoff_initial": 1.0, **extra}
    return WebhookConfig.model_validate({**fields, "email": {**email, "username": USER, "password_env": password_env}})


def _deliverer(store: Store, settings: Settings, ca: CertAuthority, clock: Clock, env: dict[str, str]) -> Deliverer:
    guard = AddressGuard(settings.allow_private_webhooks)
    smtp = SmtpTransport(guard, env, ssl_context=ca.client_context())
    return Deliverer(store, settings, clock=clock, environ=env, guard=guard, smtp=smtp, rng=lambda: 0.5)


class _Table(HTMLParser):
    """The ``(th, td)`` pairs and headings of an HTML body, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self.headings: list[str] = []
        self._tag: str | None = None
        self._th = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag if tag in ("th", "td", "h2", "h3") else self._tag

    def handle_endtag(self, tag: str) -> None:
        self._tag = None if tag in ("th", "td", "h2", "h3") else self._tag

    def handle_data(self, data: str) -> None:
        if self._tag == "th":
            self._th = data
        elif self._tag == "td":
            self.pairs.append((self._th, data))
        elif self._tag in ("h2", "h3"):
            self.headings.append(data)


def _text_facts(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    lines = text.splitlines()
    pairs = [tuple(line.strip().split(": ", 1)) for line in lines if line.startswith("  ")]
    headings = [line for line in lines if line and not line.startswith("  ")]
    return [(a, b) for a, b in pairs], headings


def _facts_of_both(message: object) -> tuple[_Table, list[tuple[str, str]], list[str], str]:
    html_part = message.get_body(("html",)).get_content()  # type: ignore[attr-defined]
    text_part = message.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    table = _Table()
    table.feed(html_part)
    pairs, headings = _text_facts(text_part)
    return table, pairs, headings, html_part


def test_alert_arrives_over_starttls_and_auth_with_both_parts_stating_the_same_facts(
    local: Store, smtp_server: SmtpServer, ca: CertAuthority
) -> None:
    settings = Settings(webhooks=(_hook(smtp_server.url),), dashboard_url="https://mlwatch.example.com")
    (event_id,) = emit(local, settings, "alert.firing", ALERT, severity="warning", labels=ALERT["labels"])  # type: ignore[arg-type]
    _deliverer(local, settings, ca, Clock(), ENV).drain()
    (got,) = smtp_server.inbox.messages
    assert got.tls and got.login == USER
    assert got.mail_from == "mlwatch@example.com" and got.rcpt_tos == ["oncall@example.com", "ml@example.com"]
    assert got.message["Message-ID"] == f"<{event_id}@mlwatch>"
    assert got.message["Subject"] == f"[mlwatch] [FIRING] income-drift: {SUMMARY}"
    table, text_pairs, text_headings, html_part = _facts_of_both(got.message)
    assert table.pairs == text_pairs
    assert table.headings == text_headings
    assert ("feature_drift" in dict(text_pairs).values()) and ("value", "0.4123") in text_pairs
    assert ("labels", "feature=income, rule=income-drift, service=credit") in text_pairs
    assert ("dashboard", "https://mlwatch.example.com/alerts?service=credit") in text_pairs
    assert SUMMARY in table.headings  # shown as typed ...
    assert (
        "<script>" not in html_part and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; income" in html_part
    )  # ... never as markup
    (logged,) = local.list_deliveries()
    assert logged.status == "delivered" and logged.last_status_code == 250 and logged.attempts == 1


def test_a_grouped_notification_lists_every_alert_of_the_group(local: Store) -> None:
    alerts = [{**ALERT, "rule": f"drift-{i}", "summary": f"credit: feature f{i} drifted"} for i in range(3)]
    data = {"alerts": alerts, "group": {"key": "service=credit", "labels": {"service": "credit"}}}
    event = Event("evt_group", "alert.firing", 1_790_000_100.0, "warning", {"service": "credit"}, data)
    assert subject(event) == "[mlwatch] [FIRING] 3 alerts: service=credit"
    hook = _hook("smtp://localhost:2525")
    assert enqueue(local, Settings(webhooks=(hook,)), event, [hook]) == ["evt_group"]
    (entry,) = local.list_deliveries()
    assert hook.email is not None
    table, text_pairs, text_headings, _ = _facts_of_both(message_of(hook.email, entry))
    assert table.pairs == text_pairs and table.headings == text_headings
    assert [h for h in text_headings if "drifted" in h] == [f"credit: feature f{i} drifted" for i in range(3)]
    assert [v for k, v in text_pairs if k == "rule"] == ["drift-0", "drift-1", "drift-2"]


def test_refused_login_is_logged_with_the_servers_reason_and_delivery_goes_on(
    local: Store, smtp_server: SmtpServer, ca: CertAuthority
) -> None:
    wrong = _hook(smtp_server.url, name="wrong", password_env="WRONG_PASSWORD")
    right = _hook(smtp_server.url, name="right")
    settings = Settings(webhooks=(wrong, right))
    emit(local, settings, "test", {"message": "hello"})
    outcomes = _deliverer(local, settings, ca, Clock(), {**ENV, "WRONG_PASSWORD": "guess"}).run_once()
    assert sorted(o.status for o in outcomes) == ["delivered", "failed"]
    logged = {d.receiver: d for d in local.list_deliveries()}
    refused = logged["wrong"]
    assert refused.status == "failed" and refused.last_status_code == 535  # permanent: not retried
    assert refused.last_error is not None and refused.last_error.startswith("SMTP 535: 5.7.8 Authentication")
    assert [a.status_code for a in local.get_delivery(refused.id).attempt_log] == [535]
    assert logged["right"].status == "delivered" and len(smtp_server.inbox.messages) == 1


def test_server_down_is_retried_then_delivered(local: Store, ca: CertAuthority) -> None:
    port = free_port()
    settings = Settings(webhooks=(_hook(f"smtp://localhost:{port}"),))
    emit(local, settings, "test", {"message": "hello"})
    clock = Clock()
    deliverer = _deliverer(local, settings, ca, clock, ENV)
    (first,) = deliverer.run_once()
    assert first.status == "pending" and first.error is not None and "Connection refused" in first.error
    server = SmtpServer(port, ca.server_context("localhost"))
    try:
        clock.advance(5.0)
        (second,) = deliverer.run_once()
        assert second.status == "delivered" and len(server.inbox.messages) == 1
    finally:
        server.stop()
    (logged,) = local.list_deliveries()
    tries = local.get_delivery(logged.id).attempt_log
    assert [a.status_code for a in tries] == [None, 250] and tries[0].error == first.error


@pytest.mark.parametrize(("reply", "status"), [("451 4.3.0 try again later", "pending"), ("554 5.7.1 no", "failed")])
def test_transient_replies_are_retried_and_permanent_ones_fail(
    local: Store, smtp_server: SmtpServer, ca: CertAuthority, reply: str, status: str
) -> None:
    smtp_server.inbox.replies.append(reply)
    settings = Settings(webhooks=(_hook(smtp_server.url),))
    emit(local, settings, "test", {"message": "hello"})
    (outcome,) = _deliverer(local, settings, ca, Clock(), ENV).run_once()
    assert outcome.status == status and outcome.status_code == int(reply[:3])
    assert outcome.error == f"SMTP {reply[:3]}: {reply[4:]}"


def test_implicit_tls_on_smtps(local: Store, ca: CertAuthority) -> None:
    server = SmtpServer(free_port(), ca.server_context("localhost"), implicit=True)
    try:
        settings = Settings(webhooks=(_hook(server.url),))
        assert server.url.startswith("smtps://")
        emit(local, settings, "test", {"message": "hello"})
        (outcome,) = _deliverer(local, settings, ca, Clock(), ENV).run_once()
        assert outcome.status == "delivered" and server.inbox.messages[0].login == USER  # the server speaks only TLS
    finally:
        server.stop()


def test_a_server_without_starttls_gets_no_mail_in_clear(local: Store, ca: CertAuthority) -> None:
    server = SmtpServer(free_port(), None, auth=False)
    try:
        settings = Settings(webhooks=(_hook(server.url),))
        emit(local, settings, "test", {"message": "hello"})
        (outcome,) = _deliverer(local, settings, ca, Clock(), ENV).run_once()
        assert outcome.status == "failed" and outcome.error is not None and "does not offer STARTTLS" in outcome.error
        assert server.inbox.messages == []
    finally:
        server.stop()


def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(local: Store, ca: CertAuthority) -> None:
    settings = Settings(webhooks=(_hook("smtp://mail.example.com:587"),))
    emit(local, settings, "test", {"message": "hello"})
    guard = AddressGuard(False, resolve=lambda host: ["10.0.0.7"])
    smtp = SmtpTransport(guard, ENV, ssl_context=ca.client_context())
    (outcome,) = Deliverer(local, settings, guard=guard, smtp=smtp, environ=ENV).run_once()
    assert outcome.status == "failed"
    assert outcome.error == (
        "refused: mail.example.com resolves to 10.0.0.7, a private network address; "
        "set allow_private_webhooks: true in mlwatch.yaml to send webhooks inside your network"
    )


def test_a_stored_body_that_is_no_email_fails_with_the_reason(local: Store, ca: CertAuthority) -> None:
    settings = Settings(webhooks=(_hook("smtp://localhost:2525"),))
    local.enqueue_deliveries([OutboxEntry("evt_odd", "mail", "test", "{}", 1_790_000_000.0)])
    (outcome,) = _deliverer(local, settings, ca, Clock(), ENV).run_once()
    assert outcome.status == "failed" and outcome.error == "the stored message cannot be sent: KeyError: 'subject'"


def test_unset_password_variable_at_delivery_is_retried(local: Store, ca: CertAuthority) -> None:
    settings = Settings(webhooks=(_hook("smtp://localhost:2525"),))
    emit(local, settings, "test", {"message": "hello"})
    (outcome,) = _deliverer(local, settings, ca, Clock(), {}).run_once()
    assert outcome.status == "pending"
    assert outcome.error == "environment variable SMTP_PASSWORD (the SMTP password) is not set"


def _load(tmp_path: Path, hook: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "mlwatch.yaml"
    path.write_text(f"webhooks:\n  - {hook}\n")
    return load_settings(path, environ=ENV if env is None else env)


MAIL = "email: {from: mlwatch@example.com, to: [oncall@example.com], username: u, password_env: SMTP_PASSWORD}"


def test_an_email_receiver_loads_from_yaml(tmp_path: Path) -> None:
    hook = _load(tmp_path, f"{{name: m, format: email, url: 'smtps://smtp.example.com:465', {MAIL}}}").webhooks[0]
    assert hook.email is not None and hook.email.sender == "mlwatch@example.com"
    assert hook.email.to == ("oncall@example.com",) and hook.email.password_env == "SMTP_PASSWORD"


@pytest.mark.parametrize(
    ("hook", "env", "message"),
    [
        (
            f"{{name: m, format: email, url: 'smtp://10.0.0.5:587', {MAIL}}}",
            ENV,
            r"webhooks\[0\]\.url: 10\.0\.0\.5 is a private network address; set allow_private_webhooks",
        ),
        (
            f"{{name: m, format: email, url: 'smtp://smtp.example.com:587', {MAIL}}}",
            {},
            r"webhooks\[0\]\.email\.password_env: environment variable SMTP_PASSWORD is not set",
        ),
        (
            "{name: m, format: email, url: 'smtp://smtp.example.com', email: {from: 'not an address', to: [a@b.org]}}",
            ENV,
            r"webhooks\.0\.email\.from: Value error, expected one e-mail address such as ops@example\.com, "
            r"got 'not an address'",
        ),
        (
            "{name: m, format: email, url: 'smtp://smtp.example.com', "
            "email: {from: a@b.org, to: ['x@y.org, z@w.org']}}",
            ENV,
            r"webhooks\.0\.email\.to\.0: Value error, expected one e-mail address",
        ),
        (
            "{name: m, format: email, url: 'smtp://smtp.example.com', email: {from: a@b.org, to: []}}",
            ENV,
            r"webhooks\.0\.email\.to: Tuple should have at least 1 item",
        ),
        (
            "{name: m, format: email, url: 'https://smtp.example.com/'}",
            ENV,
            r"format email is sent over SMTP: expected an smtp:// \(STARTTLS\) or smtps:// URL, got https://",
        ),
        (
            f"{{name: m, format: email, url: 'smtp://u:hunter2@smtp.example.com', {MAIL}}}",
            ENV,
            r"webhooks\.0: Value error, expected smtp://host:port without credentials: use email\.username",
        ),
        (
            "{name: m, format: email, url: 'smtp://smtp.example.com'}",
            ENV,
            r"format email needs email: \{from: ADDRESS, to: \[ADDRESS, \.\.\.\]\}",
        ),
        (
            "{name: m, format: json, url: 'smtp://smtp.example.com'}",
            ENV,
            r"format json is posted over HTTP: expected an http:// or https:// URL, got smtp://",
        ),
        (
            "{name: m, format: email, url: 'smtp://smtp.example.com', "
            "email: {from: a@b.org, to: [c@d.org], username: u}}",
            ENV,
            r"username and password_env go together",
        ),
        (
            "{name: m, format: emial, url: 'smtp://smtp.example.com'}",
            ENV,
            r"webhooks\.0\.format: Input should be .*'msteams' or 'email' \(got 'emial'\)",
        ),
    ],
)
def test_bad_email_receivers_are_refused_at_load_naming_the_key(
    tmp_path: Path, hook: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, hook, env)


def test_the_stored_body_holds_subject_and_both_parts_and_no_address() -> None:
    event = Event("evt_1", "alert.firing", 1_790_000_000.0, "warning", {"service": "credit"}, dict(ALERT))
    stored = loads(render("email", event, Settings()))
    assert set(stored) == {"subject", "text", "html"}
    assert f"\n{SUMMARY}\n" in stored["text"]  # plain text shows it as typed
    assert "&lt;script&gt;" in stored["html"] and "oncall@" not in stored["text"]  # addresses are added when sent
