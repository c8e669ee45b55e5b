"""deploy/prometheus.yml and the Grafana dashboard, checked by the real Prometheus tools.

``promtool check config`` reads the shipped config; ``promtool check metrics`` reads real
``/metrics`` output; a real ``prometheus`` scrapes two real API replicas on one store
through the shipped config, with the token file the compose secret provides, and answers
every dashboard panel's query, whose series must carry the labels its legend names.
Without Debian's ``prometheus`` package these skip, or fail when
``MLWATCH_REQUIRE_PROMETHEUS=1`` (CI, whose .ci/run installs it).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from monitor.check_summary import CheckSummary
from monitor.store import Store
from tests.conftest import RunningServer, free_port, start_server, stop_process, unavailable, wait_http

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy/prometheus.yml"
DASHBOARD = ROOT / "deploy/grafana/dashboards/mlwatch.json"
COMPOSE_TARGET = "server:8000"  # the compose service name and the port its replicas listen on
QUALITY = {"accuracy": 0.91, "f1": 0.84, "log_loss": 0.31}


def tool(name: str) -> str:
    """The path of Prometheus's ``name`` binary, or skip (fail in CI)."""
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed (apt-get install prometheus)", "MLWATCH_REQUIRE_PROMETHEUS")
    return found


def local_config(shipped: dict[str, Any], replicas: list[str], token_file: Path) -> dict[str, Any]:
    """The shipped config as this machine resolves compose's names.

    Docker's DNS answers the service name with every replica: a ``dns_sd_configs`` job
    therefore gets one target per replica, a static ``server:8000`` one target, reached on
    the first address that answers. The compose secret is ``token_file`` here.
    """
    config = copy.deepcopy(shipped)
    config["global"]["scrape_interval"] = "1s"
    for job in config["scrape_configs"]:
        if job.pop("dns_sd_configs", None):
            job["static_configs"] = [{"targets": list(replicas)}]
        for group in job["static_configs"]:
            group["targets"] = [replicas[0] if t == COMPOSE_TARGET else t for t in group["targets"]]
        auth = job.get("authorization", {})
        if "credentials_file" in auth:
            auth["credentials_file"] = str(token_file)
    return config


@dataclass
class Stack:
    """Two API replicas on one store, scraped by a real Prometheus."""

    replicas: list[RunningServer]
    prometheus: str
    ingested: dict[tuple[str, str], int]

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The result of ``expr`` once it has series (rates need two scrapes)."""
        deadline = time.monotonic() + timeout
        while not (result := self.query(expr)):
            assert time.monotonic() < deadline, f"{expr} returned nothing within {timeout}s; targets: {self.targets()}"
            time.sleep(0.5)
        return result

    def targets(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.prometheus}/api/v1/targets", timeout=10).json()
        return list(answer["data"]["activeTargets"])


def _seed(server: RunningServer) -> dict[tuple[str, str], int]:
    """Two services, three model versions, errors, and a check with quality per service."""
    ingested: dict[tuple[str, str], int] = {}
    with server.client() as client:
        for service, versions in (("credit", ["1", "2"]), ("fraud", ["7"])):
            client.post("/v1/services", json={"name": service, "features": [{"name": "x"}]}).raise_for_status()
            for version in versions:
                records = [
                    {
                        "request_id": f"{service}-{version}-{i}",
                        "features": {"x": float(i)},
                        "latency_ms": 0.5 + i,
                        "model_version": version,
                        "status": "error" if i % 10 == 0 else "ok",
                    }
                    for i in range(40)
                ]
                client.post(f"/v1/services/{service}/predictions", json={"records": records}).raise_for_status()
                ingested[(service, version)] = len(records)
    store = Store.open(server.store_url)
    for name in ("credit", "fraud"):
        summary = {"rows": 80, "drift_share": 0.5, "quality": QUALITY, "estimated_quality": QUALITY}
        store.add_check(
            store.get_service(name),
            window_start=0,
            window_end=100,
            model_version=None,
            status="ok",
            trigger="manual",
            summary=CheckSummary.decode(summary),
            results={},
        )
    store.close()
    return ingested


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    store_url = f"sqlite:///{workdir / 'mlwatch.db'}"
    first = start_server(workdir, store_url)
    second = start_server(workdir, store_url, extra_env={"MLWATCH_BOOTSTRAP_TOKEN": first.token})  # one stack
    ingested = _seed(first)
    token_file = workdir / "mlwatch_token"
    token_file.write_text(first.token)
    addresses = [r.url.removeprefix("http://") for r in (first, second)]
    config = local_config(yaml.safe_load(CONFIG.read_text()), addresses, token_file)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    prometheus = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=60, proc=prometheus)
        yield Stack([first, second], f"http://127.0.0.1:{port}", ingested)
    finally:
        stop_process(prometheus)
        first.stop()
        second.stop()


def test_shipped_config_passes_promtool_check_config(tmp_path: Path) -> None:
    promtool = tool("promtool")
    syntax = subprocess.run([promtool, "check", "config", "--syntax-only", str(CONFIG)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    # the full check also opens credentials_file: give it the file compose's secret mounts
    shipped = yaml.safe_load(CONFIG.read_text())
    (tmp_path / "token").write_text("t")
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(local_config(shipped, ["127.0.0.1:8000"], tmp_path / "token")))
    full = subprocess.run([promtool, "check", "config", str(local)], capture_output=True, text=True)
    assert full.returncode == 0, full.stdout + full.stderr


def test_metrics_output_passes_promtool_check_metrics(stack: Stack) -> None:
    with stack.replicas[0].client() as client:
        text = client.get("/metrics").text
    assert "mlwatch_request_latency_seconds_bucket" in text and "mlwatch_quality" in text
    checked = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_prometheus_scrapes_the_api_with_the_token_of_the_compose_secret(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    while not (targets := stack.targets()) or targets[0]["health"] == "unknown":
        assert time.monotonic() < deadline, targets
        time.sleep(0.5)
    assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")]


def test_throughput_summed_over_the_stack_counts_each_prediction_once(stack: Stack) -> None:
    result = stack.wait_for("sum by (service, model_version) (mlwatch_requests_total)")
    counted = {(r["metric"]["service"], r["metric"]["model_version"]): float(r["value"][1]) for r in result}
    assert counted == {key: float(n) for key, n in stack.ingested.items()}


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _render(legend: str, labels: dict[str, str]) -> str:
    """The line name Grafana draws: each ``{{label}}`` replaced by the series' value."""
    return _PLACEHOLDER.sub(lambda match: labels[match.group(1)], legend)


def _panel_targets() -> list[tuple[str, str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"], t["legendFormat"]) for p in panels for t in p.get("targets", [])]


@pytest.mark.parametrize(("title", "expr", "legend"), _panel_targets(), ids=[t[0] for t in _panel_targets()])
def test_dashboard_legend_names_labels_that_tell_the_panels_series_apart(
    stack: Stack, title: str, expr: str, legend: str
) -> None:
    series = [r["metric"] for r in stack.wait_for(expr)]
    for labels in series:
        assert set(_PLACEHOLDER.findall(legend)) <= set(labels), f"{title}: legend {legend!r}, labels {sorted(labels)}"
    shown = [_render(legend, labels) for labels in series]
    assert len(set(shown)) == len(series) > 1, f"{title}: lines drawn as {shown}"
