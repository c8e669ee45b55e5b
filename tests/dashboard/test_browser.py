"""End to end in headless Chromium against a real API server, ``mlwatch dashboard`` and an MLflow registry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from monitor.settings import load_settings
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
WAIT_MS = 30_000


@dataclass
class Stack:
    """What the browser tests drive: the API server, the dashboard, the store and an operator token."""

    server: RunningServer
    dashboard: Dashboard
    store: Store
    token: str
    mlflow_uri: str


def register_versions(mlflow_uri: str, root: Path) -> None:
    """Two versions of MLflow model ``credit``, with an f1 each."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    experiment = client.create_experiment("credit", artifact_location=str(root / "artifacts"))
    client.create_registered_model("credit")
    for f1 in (0.78, 0.84):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "f1", f1)
        client.create_model_version("credit", source=str(root / "artifacts"), run_id=run.info.run_id)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Server and dashboard on one SQLite store seeded through the API; version 1 of ``credit`` is champion.

    Shared by the tests of this module (starting it takes a while): the read-only test runs first.
    """
    with pytest.MonkeyPatch.context() as env:
        yield from _stack(tmp_path_factory.mktemp("stack"), env)


def _stack(tmp_path: Path, env: pytest.MonkeyPatch) -> Iterator[Stack]:
    from retrain.actions import promote

    url = f"sqlite:///{tmp_path / 'stack.db'}"
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env.setenv("MLWATCH_STORE_URL", url)
    env.setenv("MLWATCH_MLFLOW_TRACKING_URI", mlflow_uri)
    server = start_server(tmp_path, url)
    dashboard = None
    store = Store.open(url)
    try:
        seed_through_api(server, {"credit": 12.0, "fraud": 45.0})
        register_versions(mlflow_uri, tmp_path)
        promote(store, load_settings(), "credit", "1", actor="setup")
        token = store.create_token("operator", "e2e")
        dashboard = start_dashboard(tmp_path, {"MLWATCH_STORE_URL": url, "MLWATCH_MLFLOW_TRACKING_URI": mlflow_uri})
        yield Stack(server, dashboard, store, token, mlflow_uri)
    finally:
        if dashboard:
            dashboard.stop()
        server.stop()
        store.close()


def log_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    wait_streamlit(page)
    page.get_by_label("Password or API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Services").wait_for(timeout=WAIT_MS)
    wait_streamlit(page)


def open_page(page: Any, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
    wait_streamlit(page)


def test_overview_lists_the_services_and_every_page_renders_without_exceptions(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    hosts: set[str | None] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).hostname))
    log_in(page, stack.dashboard.url, stack.token)
    page.get_by_role("link", name="credit").wait_for(timeout=WAIT_MS)
    assert page.get_by_role("link", name="fraud").count() == 1
    no_exception_box(page)
    screenshot(page, "overview")
    page.get_by_role("link", name="fraud").click()
    page.get_by_role("heading", name="fraud").wait_for(timeout=WAIT_MS)
    page.get_by_test_id("stVegaLiteChart").first.wait_for(timeout=WAIT_MS)
    wait_streamlit(page)
    no_exception_box(page)
    screenshot(page, "service")
    for tab in ("Resources", "Data drift", "Quality", "Segments", "Predictions"):
        page.get_by_role("tab", name=tab).click()
        wait_streamlit(page)
        no_exception_box(page)
    page.get_by_text("of the newest 120 predictions").wait_for(timeout=WAIT_MS)
    for name in ("Alerts", "Models"):
        open_page(page, name)
        page.get_by_role("heading", name=name).wait_for(timeout=WAIT_MS)
        no_exception_box(page)
        screenshot(page, name.lower())
    assert hosts == {"127.0.0.1"}  # nothing from an outside host (the favicon, fonts): air-gapped sites work


def test_a_reload_keeps_the_viewer_signed_in_until_they_log_out(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    log_in(page, stack.dashboard.url, stack.token)
    page.reload()
    page.get_by_role("heading", name="Services").wait_for(timeout=WAIT_MS)  # no login page in between
    wait_streamlit(page)
    assert page.get_by_role("button", name="Log in").count() == 0
    page.get_by_test_id("stSidebar").get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=WAIT_MS)
    page.reload()
    wait_streamlit(page)
    page.get_by_role("button", name="Log in").wait_for(timeout=WAIT_MS)
    assert page.get_by_role("heading", name="Services").count() == 0
    no_exception_box(page)


def test_retrain_shows_live_progress_and_promote_moves_the_champion(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    log_in(page, stack.dashboard.url, stack.token)
    open_page(page, "Models")
    page.get_by_text("Alias history").wait_for(timeout=WAIT_MS)

    page.get_by_role("button", name=re.compile("Retrain")).click()
    page.get_by_role("dialog").get_by_role("button", name="Start retrain").click()
    page.get_by_text(re.compile(r"Job \d+: queued")).wait_for(timeout=WAIT_MS)
    [job] = stack.store.list_jobs(service="credit")
    assert job.created_by.startswith("token:")
    stack.store.claim_job("e2e-worker")  # what a worker does; the page refreshes on its own
    stack.store.job_progress(job.id, progress=0.5, line="training the challenger")
    page.get_by_text(f"Job {job.id}: running 50%").wait_for(timeout=WAIT_MS)
    page.get_by_text("training the challenger").wait_for(timeout=WAIT_MS)
    screenshot(page, "retrain-progress")

    page.get_by_role("button", name=re.compile("Promote")).first.click()
    page.get_by_role("dialog").get_by_role("button", name="Promote version 2").click()
    page.get_by_text("Version 2 is now the champion of credit").wait_for(timeout=WAIT_MS)
    wait_streamlit(page)
    no_exception_box(page)
    screenshot(page, "promoted")
    from retrain.registry import Registry

    assert Registry.from_settings(load_settings(), stack.store).aliases("credit") == {"champion": "2", "previous": "1"}
