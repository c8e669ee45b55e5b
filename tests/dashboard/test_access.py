"""Dashboard logins: scrypt password hashes, configured users, API tokens, and the login page."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from dashboard.access import (
    SESSION_SECONDS,
    Viewer,
    authenticate,
    hash_password,
    session_cookie,
    verify_password,
    viewer_from_cookie,
)
from monitor.cli import main
from monitor.config import Settings, UserConfig
from monitor.errors import AuthError
from monitor.store import Store
from tests.dashboard.conftest import PASSWORD

Open = Callable[..., AppTest]


def test_a_password_verifies_only_against_its_own_hash() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret ", stored)
    assert hash_password("s3cret") != stored  # a fresh salt each time


@pytest.mark.parametrize(
    "stored", ["", "scrypt$1$2", "bcrypt$x$y$z$a$b", "scrypt$n$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$??"]
)
def test_a_malformed_hash_never_matches(stored: str) -> None:
    assert not verify_password("anything", stored)


def test_an_empty_password_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="non-empty password"):
        hash_password("")


@pytest.fixture
def settings() -> Settings:
    return Settings(
        users=(UserConfig(username="olga", password_hash=hash_password(PASSWORD), role="operator"),),
        bootstrap_token="boot-token",
    )


def test_users_and_tokens_log_in_with_their_roles(settings: Settings, store: Store) -> None:
    viewer_token = store.create_token("viewer")
    assert authenticate(settings, store, "olga", PASSWORD) == Viewer("olga", "operator")
    assert authenticate(settings, store, "", viewer_token) == Viewer(f"token:{viewer_token[:8]}", "viewer")
    assert authenticate(settings, store, "", "boot-token") == Viewer("bootstrap", "admin")


def test_wrong_password_unknown_user_and_ingest_tokens_are_refused(settings: Settings, store: Store) -> None:
    with pytest.raises(AuthError, match="unknown user or wrong password"):
        authenticate(settings, store, "olga", "wrong")
    with pytest.raises(AuthError, match="unknown user or wrong password"):
        authenticate(settings, store, "mallory", PASSWORD)
    with pytest.raises(AuthError, match="an ingest token cannot open the dashboard"):
        authenticate(settings, store, "", store.create_token("ingest"))
    with pytest.raises(AuthError, match="invalid or revoked token"):
        authenticate(settings, store, "", "mlw_not-a-token")


KEY = b"k" * 32


def test_a_session_cookie_brings_its_viewer_back_until_it_expires() -> None:
    now = 1_800_000_000.0
    cookie = session_cookie(Viewer("olga", "operator"), KEY, now)
    assert viewer_from_cookie(cookie, KEY, now + 60) == Viewer("olga", "operator")
    assert viewer_from_cookie(cookie, KEY, now + SESSION_SECONDS - 1) == Viewer("olga", "operator")
    assert viewer_from_cookie(cookie, KEY, now + SESSION_SECONDS + 1) is None
    assert viewer_from_cookie(cookie, b"another dashboard process" * 2, now) is None
    assert set(cookie) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_forged_or_mangled_session_cookie_brings_nobody_back() -> None:
    now = 1_800_000_000.0
    payload, _, signature = session_cookie(Viewer("vera", "viewer"), KEY, now).partition(".")
    forged = session_cookie(Viewer("vera", "admin"), b"x" * 32, now).partition(".")[0]
    for value in (None, "", payload, f"{forged}.{signature}", f"{payload}.{signature[:-2]}", "a.b.c", "%%%.###"):
        assert viewer_from_cookie(value, KEY, now) is None, value
    ingest = session_cookie(Viewer("token:abc", "ingest"), KEY, now)
    assert viewer_from_cookie(ingest, KEY, now) is None  # a role that cannot open the dashboard


def test_the_login_page_signs_in_a_configured_user(open_app: Open) -> None:
    at = open_app(role=None)
    at.text_input(key="login_username").input("olga")
    at.text_input(key="login_secret").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["viewer"] == Viewer("olga", "operator")
    assert [t.value for t in at.title] == ["Services"]


def test_the_login_page_says_why_a_login_failed(open_app: Open) -> None:
    at = open_app(role=None)
    at.text_input(key="login_username").input("olga")
    at.text_input(key="login_secret").input("not the password")
    at.button[0].click().run()
    assert not at.exception
    assert at.error[0].value == "Not signed in: unknown user or wrong password"
    assert "viewer" not in at.session_state


def test_mlwatch_user_hash_reads_the_password_from_stdin() -> None:
    result = CliRunner().invoke(main, ["user", "hash"], input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert verify_password(PASSWORD, result.output.strip())


def test_mlwatch_user_hash_refuses_an_empty_password() -> None:
    result = CliRunner().invoke(main, ["user", "hash"], input="\n")
    assert result.exit_code == 2
    assert "expected a non-empty password" in result.output


def test_mlwatch_dashboard_reports_a_bad_config_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "mlwatch.yaml"
    bad.write_text("users: [{username: x}]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLWATCH_")}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(bad), "dashboard"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "users.0.password_hash: Field required" in done.stderr
