"""Server-side dashboard sessions and the sign-in routes that set their HttpOnly cookie."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from starlette.applications import Starlette

with warnings.catch_warnings():  # Starlette 1.x would rather its TestClient ran on httpx2, not a dependency here
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from dashboard.access import authenticate
from dashboard.passwords import hash_password
from dashboard.routes import AuthRoutes
from dashboard.settings import LiveSettings
from dashboard.signins import SESSION_COOKIE, SESSION_SECONDS, SignIns, session_key
from monitor.config import Settings, UserConfig
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.store import Store
from tests.dashboard.conftest import PASSWORD, SECRET, password_hash

KEY = SECRET.encode()


@dataclass
class Clock:
    """A clock the test moves."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def settings_with(*users: tuple[str, str]) -> Settings:
    configured = tuple(UserConfig(username=n, password_hash=password_hash(), role=r) for n, r in users)
    return Settings(users=configured, bootstrap_token="boot-token-of-this-test", dashboard_secret=SECRET)


@pytest.fixture
def settings() -> Settings:
    return settings_with(("olga", "operator"))


def test_a_session_brings_its_viewer_back_until_it_expires(settings: Settings, store: Store) -> None:
    clock = Clock()
    signins = SignIns(store, lambda: settings, KEY, clock=clock)
    cookie = signins.sign_in(authenticate(settings, store, "olga", PASSWORD))
    clock.now += SESSION_SECONDS - 1
    assert signins.viewer(cookie) is not None
    assert signins.viewer(cookie).name == "olga"  # type: ignore[union-attr]
    clock.now += 2
    assert signins.viewer(cookie) is None


def test_a_logged_out_cookie_no_longer_signs_anyone_in(settings: Settings, store: Store) -> None:
    signins = SignIns(store, lambda: settings, KEY)
    cookie = signins.sign_in(authenticate(settings, store, "olga", PASSWORD))
    copied = str(cookie)
    assert signins.sign_out(cookie)
    assert signins.viewer(copied) is None
    assert not signins.sign_out(copied)


def test_another_replica_with_the_same_key_and_store_shares_the_sign_in(settings: Settings, store: Store) -> None:
    cookie = SignIns(store, lambda: settings, KEY).sign_in(authenticate(settings, store, "olga", PASSWORD))
    assert SignIns(store, lambda: settings, session_key(settings)).viewer(cookie) is not None
    assert SignIns(store, lambda: settings, b"another deployment's key, 32 bytes").viewer(cookie) is None


def test_revoking_the_token_ends_its_sessions_at_once(settings: Settings, store: Store) -> None:
    token = store.create_token("operator")
    signins = SignIns(store, lambda: settings, KEY)
    cookie = signins.sign_in(authenticate(settings, store, "", token))
    assert signins.viewer(cookie) is not None
    assert store.revoke_token(token)
    assert signins.viewer(cookie) is None


def test_removing_or_rehashing_a_user_or_the_bootstrap_token_ends_their_sessions(
    settings: Settings, store: Store
) -> None:
    current = [settings]
    signins = SignIns(store, lambda: current[0], KEY)
    olga = signins.sign_in(authenticate(settings, store, "olga", PASSWORD))
    boot = signins.sign_in(authenticate(settings, store, "", "boot-token-of-this-test"))
    rehashed = UserConfig(username="olga", password_hash=hash_password(PASSWORD), role="operator")
    for changed in (
        settings.model_copy(update={"users": (rehashed,)}),  # the admin re-hashed olga's password
        settings_with(("olga", "viewer")),  # gave olga another role
        settings.model_copy(update={"users": ()}),  # removed olga
    ):
        current[0] = changed
        assert signins.viewer(olga) is None, changed.users
        current[0] = settings
        assert signins.viewer(olga) is not None
    assert signins.viewer(boot) is not None
    current[0] = settings.model_copy(update={"bootstrap_token": None})
    assert signins.viewer(boot) is None


def test_a_forged_or_mangled_cookie_signs_no_one_in(settings: Settings, store: Store) -> None:
    signins = SignIns(store, lambda: settings, KEY)
    cookie = signins.sign_in(authenticate(settings, store, "olga", PASSWORD))
    secret, _, signature = cookie.partition(".")
    forged = SignIns(store, lambda: settings, b"x" * 32).sign_in(authenticate(settings, store, "olga", PASSWORD))
    for value in (None, "", secret, f"{forged.partition('.')[0]}.{signature}", f"{secret}.{signature[:-2]}", "a.b.c"):
        assert signins.viewer(value) is None, value


def test_a_short_dashboard_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="dashboard_secret: expected at least 32 characters, got 5"):
        session_key(Settings(dashboard_secret="short"))


def test_a_user_removed_from_mlwatch_yaml_is_signed_out_without_a_restart(tmp_path: Path, store: Store) -> None:
    config = tmp_path / "mlwatch.yaml"
    user = {"username": "olga", "password_hash": password_hash(), "role": "operator"}
    config.write_text(yaml.safe_dump({"users": [user], "dashboard_secret": SECRET}))
    live = LiveSettings(lambda: load_settings(config), environ={"MLWATCH_CONFIG": str(config)})
    signins = SignIns(store, live, session_key(live()))
    cookie = signins.sign_in(authenticate(live(), store, "olga", PASSWORD))
    assert signins.viewer(cookie) is not None
    config.write_text(yaml.safe_dump({"users": [], "dashboard_secret": SECRET, "home": ".mlwatch-x"}))
    assert signins.viewer(cookie) is None


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    """The sign-in routes alone, over a real store, as an HTTPS site."""
    signins = SignIns(store, lambda: settings, KEY)
    app = Starlette(routes=AuthRoutes(lambda: signins, lambda: settings).routes)
    with TestClient(app, base_url="https://dash.example", follow_redirects=False) as opened:
        yield opened


def test_logging_in_sets_an_httponly_strict_secure_cookie_set_by_the_server(client: TestClient) -> None:
    answer = client.post("/auth/login", data={"username": "olga", "secret": PASSWORD})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    header = answer.headers["set-cookie"]
    assert header.startswith(f"{SESSION_COOKIE}=")
    assert {"HttpOnly", "Secure", "SameSite=strict", "Path=/", f"Max-Age={SESSION_SECONDS}"} <= {
        part.strip() for part in header.split(";")
    }


def test_a_refused_login_answers_the_form_again_with_why(client: TestClient) -> None:
    answer = client.post("/auth/login", data={"username": "olga", "secret": "wrong"})
    assert answer.status_code == 401
    assert "Not signed in: unknown user or wrong password" in answer.text
    assert "set-cookie" not in answer.headers
    assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_a_login_posted_from_another_site_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/auth/login", data={"username": "olga", "secret": PASSWORD}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_logging_out_over_http_kills_a_copied_cookie(client: TestClient, settings: Settings, store: Store) -> None:
    assert client.post("/auth/login", data={"username": "olga", "secret": PASSWORD}).status_code == 303
    copied = client.cookies[SESSION_COOKIE]
    signins = SignIns(store, lambda: settings, KEY)
    assert signins.viewer(copied) is not None
    answer = client.post("/auth/logout", headers={"Origin": "https://dash.example"})
    assert answer.status_code == 303
    assert 'mlwatch_session=""' in answer.headers["set-cookie"]
    assert signins.viewer(copied) is None


def test_the_login_page_is_a_form_without_scripts(client: TestClient) -> None:
    answer = client.get("/auth/login")
    assert answer.status_code == 200
    assert '<form method="post" action="/auth/login"' in answer.text
    assert "<script" not in answer.text


def test_signing_in_again_ends_the_browsers_previous_session(
    client: TestClient, settings: Settings, store: Store
) -> None:
    assert client.post("/auth/login", data={"username": "olga", "secret": PASSWORD}).status_code == 303
    first = client.cookies[SESSION_COOKIE]
    assert client.post("/auth/login", data={"username": "olga", "secret": PASSWORD}).status_code == 303
    signins = SignIns(store, lambda: settings, KEY)
    assert signins.viewer(first) is None
    assert signins.viewer(client.cookies[SESSION_COOKIE]) is not None
