"""A real stack for the browser tests: API server, dashboard process and headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, free_port, stop_process, unavailable, wait_http

CHROMIUM = os.environ.get("MLWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"


def require_chromium() -> None:
    """Skip (or fail when ``MLWATCH_REQUIRE_BROWSER=1``) without Debian's chromium."""
    if Path(CHROMIUM).is_file() or shutil.which(CHROMIUM):
        return
    reason = f"no Chromium at {CHROMIUM}: apt-get install chromium chromium-driver (or set MLWATCH_CHROMIUM)"
    unavailable(reason, "MLWATCH_REQUIRE_BROWSER")


@dataclass
class Dashboard:
    """A running ``mlwatch dashboard`` process."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_process(self.process)


def start_dashboard(workdir: Path, env: dict[str, str]) -> Dashboard:
    """Start ``mlwatch dashboard`` on a free port and wait for Streamlit's health endpoint."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "dashboard", "--port", str(port)],
        cwd=workdir,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/_stcore/health", timeout=60, proc=proc)
    return Dashboard(url, proc)


def seed_through_api(server: RunningServer, services: dict[str, float]) -> None:
    """Register ``services`` (name -> latency in ms) and send each an hour of predictions through the API."""
    now = datetime.now(UTC)
    with server.client() as client:
        for name, latency in services.items():
            body = {"name": name, "task": "classification", "features": [{"name": "income"}, {"name": "age"}]}
            client.post("/v1/services", json=body).raise_for_status()
            records = [_record(name, i, now - timedelta(seconds=3600 - 30 * i), latency) for i in range(120)]
            client.post(f"/v1/services/{name}/predictions", json={"records": records}).raise_for_status()
        samples = [
            {
                "timestamp": (now - timedelta(minutes=10 - i)).isoformat(),
                "kind": "host",
                "metrics": {"cpu_percent": 30.0 + i},
            }
            for i in range(10)
        ]
        client.post("/v1/hosts/serving-1/samples", json={"samples": samples}).raise_for_status()


def _record(service: str, i: int, ts: datetime, latency: float) -> dict[str, Any]:
    return {
        "request_id": f"{service}-{i}",
        "timestamp": ts.isoformat(),
        "features": {"income": 1000.0 + i, "age": 30 + i % 40},
        "prediction": i % 2,
        "latency_ms": latency + i % 5,
        "model_version": "1",
        "status": "ok" if i % 30 else "error",
    }


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A page of headless Debian Chromium driven by Playwright."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, timezone_id="Europe/Berlin")
        yield page
        browser.close()


def wait_streamlit(page: Any, timeout_ms: int = 30_000) -> None:
    """Wait until Streamlit finished running the script (no 'running' indicator)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(_IDLE, timeout=timeout_ms)
    page.wait_for_timeout(300)  # let the last deltas paint


_IDLE = """() => {
    const status = document.querySelector('[data-testid="stStatusWidget"]');
    return !status || !/Running|Stop/.test(status.innerText);
}"""


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-output/dashboard/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_exception_box(page: Any) -> None:
    """Fail with the text of any Streamlit exception element on the page."""
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


__all__ = ["Dashboard", "httpx", "seed_through_api", "start_dashboard"]
