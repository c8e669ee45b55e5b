"""Receiver configuration is refused at load with a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.webhooks.receivers import address_kind


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "mlwatch.yaml"
    path.write_text(text)
    return load_settings(path, environ=env or {})


def test_non_http_url_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"webhooks\.0\.url: .*expected an http:// or https:// URL, got scheme 'ftp'"):
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
    with pytest.raises(ConfigError, match=r"webhooks\.0\.format: Input should be 'json' or 'slack'"):
        _load(tmp_path, "webhooks:\n  - {name: a, url: 'http://127.0.0.1/', format: teams}\n")
    with pytest.raises(ConfigError, match=r"webhooks\.0\.events: .*unknown event type 'alert.fire'"):
        _load(tmp_path, "webhooks:\n  - {name: a, url: 'http://127.0.0.1/', events: [alert.fire]}\n")


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
