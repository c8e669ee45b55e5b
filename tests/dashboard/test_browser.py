"""End to end in headless Chromium against a real API server and ``mlwatch dashboard`` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.store import Store
from tests.conftest import RunningServer, start_server
from tests.dashboard.browser import (
    Dashboard,
    browser_page,
    no_exception_box,
    screenshot,
    seed_through_api,
    start_dashboard,
    wait_streamlit,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["browser_page"]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[RunningServer, Dashboard, str]]:
    """API server and dashboard on one SQLite store, seeded through the API; yields an operator token."""
    url = f"sqlite:///{tmp_path / 'stack.db'}"
    server = start_server(tmp_path, url)
    dashboard = None
    try:
        seed_through_api(server, {"credit": 12.0, "fraud": 45.0})
        store = Store.open(url)
        token = store.create_token("operator", "e2e")
        store.close()
        dashboard = start_dashboard(tmp_path, {"MLWATCH_STORE_URL": url})
        yield server, dashboard, token
    finally:
        if dashboard:
            dashboard.stop()
        server.stop()


def log_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    wait_streamlit(page)
    page.get_by_label("Password or API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Services").wait_for(timeout=30_000)
    wait_streamlit(page)


def test_overview_lists_the_services_and_pages_render_without_exceptions(
    stack: tuple[RunningServer, Dashboard, str], browser_page: Any
) -> None:
    _, dashboard, token = stack
    page = browser_page
    log_in(page, dashboard.url, token)
    page.get_by_role("link", name="credit").wait_for(timeout=30_000)
    assert page.get_by_role("link", name="fraud").count() == 1
    no_exception_box(page)
    screenshot(page, "overview")
    page.get_by_role("link", name="fraud").click()
    page.get_by_role("heading", name="fraud").wait_for(timeout=30_000)
    wait_streamlit(page)
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=30_000)
    wait_streamlit(page)
    no_exception_box(page)
    screenshot(page, "service")
