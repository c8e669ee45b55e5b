"""Dashboard logins: argon2id password hashes (old scrypt ones still accepted), users, API tokens, the CLI."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dashboard.access import Viewer, authenticate
from dashboard.passwords import hash_password, needs_rehash, verify_password
from monitor.cli import main
from monitor.config import Settings, UserConfig
from monitor.errors import AuthError
from monitor.store import Store
from tests.dashboard.conftest import PASSWORD, password_hash


def scrypt_hash(password: str, n: int = 2**14) -> str:
    """A hash in the format ``mlwatch user hash`` printed before argon2id."""
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return "$".join(["scrypt", str(n), "8", "1", base64.b64encode(salt).decode(), base64.b64encode(key).decode()])


def test_a_password_hashes_to_argon2id_and_verifies_only_against_its_own_hash() -> None:
    stored = password_hash()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + " ", stored)
    assert not needs_rehash(stored)
    assert hash_password(PASSWORD) != stored  # a fresh salt each time


def test_an_old_scrypt_hash_still_verifies_and_asks_to_be_rehashed() -> None:
    stored = scrypt_hash("s3cret")
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret ", stored)
    assert needs_rehash(stored)


def test_argon2_hashes_with_weaker_parameters_ask_to_be_rehashed() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("s3cret")
    assert verify_password("s3cret", weak)
    assert needs_rehash(weak)


@pytest.mark.parametrize(
    "stored",
    ["", "scrypt$1$2", "bcrypt$x$y$z$a$b", "scrypt$n$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$??", "$argon2id$v=19$junk"],
)
def test_a_malformed_hash_never_matches(stored: str) -> None:
    assert not verify_password("anything", stored)


def test_an_empty_password_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="non-empty password"):
        hash_password("")


@pytest.fixture
def settings() -> Settings:
    return Settings(
        users=(
            UserConfig(username="olga", password_hash=password_hash(), role="operator"),
            UserConfig(username="otto", password_hash=scrypt_hash(PASSWORD), role="viewer"),
        ),
        bootstrap_token="boot-token",
    )


def test_users_and_tokens_log_in_with_their_roles(settings: Settings, store: Store) -> None:
    viewer_token = store.create_token("viewer")
    assert authenticate(settings, store, "olga", PASSWORD) == Viewer("olga", "operator")
    assert authenticate(settings, store, "", viewer_token) == Viewer(f"token:{viewer_token[:8]}", "viewer")
    assert authenticate(settings, store, "", "boot-token") == Viewer("bootstrap", "admin")


def test_a_login_with_an_old_hash_tells_the_admin_to_rehash(
    settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mlwatch.dashboard"):
        assert authenticate(settings, store, "otto", PASSWORD) == Viewer("otto", "viewer")
        authenticate(settings, store, "olga", PASSWORD)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "mlwatch.dashboard"]
    assert "'otto'" in warning
    assert "mlwatch user hash" in warning


def test_wrong_password_unknown_user_and_ingest_tokens_are_refused(settings: Settings, store: Store) -> None:
    with pytest.raises(AuthError, match="unknown user or wrong password"):
        authenticate(settings, store, "olga", "wrong")
    with pytest.raises(AuthError, match="unknown user or wrong password"):
        authenticate(settings, store, "mallory", PASSWORD)
    with pytest.raises(AuthError, match="an ingest token cannot open the dashboard"):
        authenticate(settings, store, "", store.create_token("ingest"))
    with pytest.raises(AuthError, match="invalid or revoked token"):
        authenticate(settings, store, "", "mlw_not-a-token")


def test_mlwatch_user_hash_reads_the_password_from_stdin_and_prints_argon2id() -> None:
    result = CliRunner().invoke(main, ["user", "hash"], input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("$argon2id$")
    assert verify_password(PASSWORD, result.output.strip())


def test_mlwatch_user_hash_refuses_an_empty_password() -> None:
    result = CliRunner().invoke(main, ["user", "hash"], input="\n")
    assert result.exit_code == 2
    assert "expected a non-empty password" in result.output


def _dashboard_command(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "dashboard"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def test_mlwatch_dashboard_reports_a_bad_config_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "mlwatch.yaml"
    bad.write_text("users: [{username: x}]\n")
    done = _dashboard_command(bad)
    assert done.returncode == 1
    assert "users.0.password_hash: Field required" in done.stderr


def test_mlwatch_dashboard_refuses_a_short_dashboard_secret(tmp_path: Path) -> None:
    config = tmp_path / "mlwatch.yaml"
    config.write_text("dashboard_secret: hunter2\n")
    done = _dashboard_command(config)
    assert done.returncode == 1
    assert "dashboard_secret: expected at least 32 characters, got 7" in done.stderr
