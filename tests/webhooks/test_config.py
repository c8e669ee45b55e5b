"""Receiver configuration is refused at load with a message naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from monitor.config import Settings, WebhookFormat
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.webhooks.events import Event
from monitor.webhooks.formats import FORMATS, render
from monitor.webhooks.receivers import address_kind


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "mlwatch.yaml"
    path.write_text(text)
    return load_settings(path, environ=env or {})


def test_non_http_url_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"webhooks\.0\.url: .*expected an http:// or https:// URL \(smtp:// or smtps:// for format email\), "
        r"got scheme 'ftp'",
    ):
        _load(tmp_path, "webhooks:\n  - {name: ops, url: 'ftp://hooks.example.com/x'}\n")


def test_private_address_is_refused_unless_allowed(tmp_path: Path) -> None:
    text = "webhooks:\n  - {name: ops, url: 'http://10.1.2.3/hook'}\n"
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.url: 10\.1\.2\.3 is a private network address"):
        _load(tmp_path, text)
    allowed = _load(tmp_path, "allow_private_webhooks: true\n" + text)
    assert allowed.webhooks[0].url == "http://10.1.2.3/hook"  # type: ignore[attr-defined]


def test_loopback_named_in_the_url_is_allowed(tmp_path: Path) -> None:
    settings = _load(
        tmp_path, "webhooks:\n  - {name: a, url: 'http://127.0.0.1:9000/'}\n  - {name: b, url: 'http://localhost/'}\n"
    )
    assert [h.name for h in settings.webhooks] == ["a", "b"]  # type: ignore[attr-defined]


def test_missing_signing_secret_variable_is_refused(tmp_path: Path) -> None:
    text = "webhooks:\n  - {name: ops, url: 'https://hooks.example.com/x', secret_env: HOOK_SECRET}\n"
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.secret_env: environment variable HOOK_SECRET is not set"):
        _load(tmp_path, text)
    assert _load(tmp_path, text, {"HOOK_SECRET": "whsec_aHVudGVyMg=="}).webhooks[0].secret_env == "HOOK_SECRET"  # type: ignore[attr-defined]


def test_malformed_whsec_secret_is_refused(tmp_path: Path) -> None:
    text = "webhooks:\n  - {name: ops, url: 'https://hooks.example.com/x', secret_env: HOOK_SECRET}\n"
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.secret_env: the value of HOOK_SECRET is not a valid secret"):
        _load(tmp_path, text, {"HOOK_SECRET": "whsec_***"})


def test_unknown_format_and_event_type_are_refused(tmp_path: Path) -> None:
    allowed = r"'json', 'slack', 'alertmanager', 'pagerduty', 'msteams' or 'email'"
    with pytest.raises(ConfigError, match=rf"webhooks\.0\.format: Input should be {allowed} \(got 'teams'\)"):
        _load(tmp_path, "webhooks:\n  - {name: a, url: 'http://127.0.0.1/', format: teams}\n")
    with pytest.raises(ConfigError, match=r"webhooks\.0\.events: .*unknown event type 'alert.fire'"):
        _load(tmp_path, "webhooks:\n  - {name: a, url: 'http://127.0.0.1/', events: [alert.fire]}\n")


def test_every_configurable_format_has_a_renderer() -> None:
    assert set(get_args(WebhookFormat)) == set(FORMATS)


def test_the_new_formats_load(tmp_path: Path) -> None:
    hooks = "".join(
        f"  - {{name: {f}, url: 'http://127.0.0.1/{f}', format: {f}}}\n" for f in ("alertmanager", "msteams")
    )
    settings = _load(tmp_path, "webhooks:\n" + hooks)
    assert [h.format for h in settings.webhooks] == ["alertmanager", "msteams"]  # type: ignore[attr-defined]


PAGERDUTY = "webhooks:\n  - {name: pd, url: 'https://events.pagerduty.com/v2/enqueue', format: pagerduty%s}\n"


def test_pagerduty_needs_a_routing_key_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"webhooks\.0: Value error, format pagerduty needs routing_key_env"):
        _load(tmp_path, PAGERDUTY % "")
    with pytest.raises(
        ConfigError, match=r"webhooks\.0: Value error, routing_key_env is only used by format pagerduty"
    ):
        _load(tmp_path, "webhooks:\n  - {name: a, url: 'http://127.0.0.1/', routing_key_env: PD_KEY}\n")


def test_pagerduty_routing_key_must_be_set_and_32_characters(tmp_path: Path) -> None:
    text = PAGERDUTY % ", routing_key_env: PD_KEY"
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.routing_key_env: environment variable PD_KEY is not set"):
        _load(tmp_path, text)
    with pytest.raises(ConfigError, match=r"routing_key_env: the value of PD_KEY .* expected 32 .*, got 31 characters"):
        _load(tmp_path, text, {"PD_KEY": "a" * 31})
    with pytest.raises(ConfigError, match=r"routing_key_env: the value of PD_KEY is not a PagerDuty Integration Key"):
        _load(tmp_path, text, {"PD_KEY": "a" * 31 + "!"})
    assert _load(tmp_path, text, {"PD_KEY": "0123456789abcdef0123456789ABCDEF"}).webhooks[0].routing_key_env == "PD_KEY"  # type: ignore[attr-defined]


def test_render_refuses_an_unknown_format_naming_the_known_ones() -> None:
    event = Event("evt_1", "test", 1_700_000_000.0)
    with pytest.raises(ValueError, match=r"unknown webhook format 'teams'; expected one of json, slack, alertmanager"):
        render("teams", event, Settings())


def test_duplicate_receiver_names_are_refused(tmp_path: Path) -> None:
    text = "webhooks:\n  - {name: a, url: 'http://127.0.0.1/1'}\n  - {name: a, url: 'http://127.0.0.1/2'}\n"
    with pytest.raises(ConfigError, match=r"webhooks\[1\]\.name: duplicate receiver name 'a'"):
        _load(tmp_path, text)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("192.168.1.5", "private"),
        ("169.254.169.254", "private"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("8.8.8.8", "public"),
    ],
)
def test_addresses_are_classified(address: str, kind: str) -> None:
    assert address_kind(address) == kind
