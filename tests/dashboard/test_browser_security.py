"""Attacks on the dashboard, in headless Chromium against a real API server and ``mlwatch dashboard``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboard.signins import SESSION_COOKIE
from monitor.store import Store
from tests.conftest import RunningServer, start_server
from tests.dashboard.browser import Dashboard, browser_page, no_exception_box, start_dashboard, wait_streamlit
from tests.dashboard.test_report_safety import PAYLOAD

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["browser_page"]
WAIT_MS = 60_000


@dataclass
class Stack:
    """The API server, the dashboard, their store and an admin token (the one worth stealing)."""

    server: RunningServer
    dashboard: Dashboard
    store: Store
    admin_token: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("attack")
    url = f"sqlite:///{root / 'attack.db'}"
    server = start_server(root, url)
    store = Store.open(url)
    dashboard = None
    try:
        dashboard = start_dashboard(root, {"MLWATCH_STORE_URL": url})
        yield Stack(server, dashboard, store, store.create_token("admin", "victim"))
    finally:
        if dashboard:
            dashboard.stop()
        server.stop()
        store.close()


def ingest_the_payload(server: RunningServer, ingest_token: str) -> int:
    """What an ingest token can do: send ``PAYLOAD`` as a category; then an operator's check; the check id."""
    now = datetime.now(UTC)
    features = [{"name": "income"}, {"name": "region", "type": "categorical"}]
    reference = [{"income": 1000.0 + i, "region": ("north", "south")[i % 2], "prediction": i % 2} for i in range(90)]
    records = [
        {
            "request_id": f"loans-{i}",
            "timestamp": (now - timedelta(seconds=3000 - 10 * i)).isoformat(),
            "features": {"income": 1000.0 + i, "region": PAYLOAD if i % 3 == 0 else "north"},
            "prediction": i % 2,
        }
        for i in range(90)
    ]
    with server.client() as admin:
        admin.post("/v1/services", json={"name": "loans", "task": "classification", "features": features})
        admin.post("/v1/services/loans/reference", json={"records": reference}).raise_for_status()
    with server.client(ingest_token) as attacker:
        attacker.post("/v1/services/loans/predictions", json={"records": records}).raise_for_status()
    with server.client() as operator:
        check = operator.post("/v1/services/loans/checks", json={})
    check.raise_for_status()
    return int(check.json()["id"])


def log_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    wait_streamlit(page)
    page.get_by_label("Password or API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Services").wait_for(timeout=WAIT_MS)
    wait_streamlit(page)


def drawn_report(page: Any) -> Any:
    """The frame in which Evidently drew its drift report, once it has; None if a script of the report got out first."""
    for _ in range(WAIT_MS // 500):
        if page.evaluate("document.body.dataset.pwn") is not None:
            return None
        for frame in page.frames:
            if frame.url == "about:srcdoc" and frame.query_selector("[id^=root_metric_] *"):
                return frame
        page.wait_for_timeout(500)
    raise AssertionError("Evidently never drew the report, and nothing got out of it")


def test_a_script_sent_as_a_category_cannot_reach_the_admins_dashboard(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    ingest_the_payload(stack.server, stack.store.create_token("ingest", "attacker"))
    log_in(page, stack.dashboard.url, stack.admin_token)
    page.goto(f"{stack.dashboard.url}/service?service=loans&section=Data+drift")
    wait_streamlit(page)
    page.get_by_role("button", name="Show report").click()
    report = drawn_report(page)
    assert page.evaluate("document.body.dataset.pwn") is None
    assert report is not None
    assert report.evaluate("document.body.innerText").strip()  # the report is drawn, in its sandbox
    wait_streamlit(page)
    no_exception_box(page)
    for frame in page.frames:  # nor could it write into any frame between
        assert frame.evaluate("() => { try { return document.body.dataset.pwn } catch (e) { return null } }") is None


def test_the_session_cookie_is_httponly_and_a_copy_of_it_dies_with_log_out(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    log_in(page, stack.dashboard.url, stack.admin_token)
    [cookie] = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    assert SESSION_COOKIE not in page.evaluate("document.cookie")  # no script of the page can read it
    thief = page.context.browser.new_context()
    try:
        thief.add_cookies([{"name": SESSION_COOKIE, "value": cookie["value"], "url": stack.dashboard.url}])
        elsewhere = thief.new_page()
        open_dashboard(elsewhere, stack.dashboard.url, expect="Services")  # the copy works while the session lives
        page.get_by_test_id("stSidebar").get_by_role("button", name="Log out").click()
        page.get_by_role("button", name="Log in").wait_for(timeout=WAIT_MS)
        open_dashboard(elsewhere, stack.dashboard.url, expect="Log in")  # and not a moment after
        assert elsewhere.get_by_role("heading", name="Services").count() == 0
    finally:
        thief.close()


def open_dashboard(page: Any, url: str, *, expect: str) -> None:
    """Open ``url`` and wait for the overview (``expect="Services"``) or the login form (``expect="Log in"``)."""
    page.goto(url)
    wait_streamlit(page)
    found = (
        page.get_by_role("heading", name=expect) if expect == "Services" else page.get_by_role("button", name=expect)
    )
    found.wait_for(timeout=WAIT_MS)
