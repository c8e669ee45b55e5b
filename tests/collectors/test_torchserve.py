"""A real TorchServe: `mlwatch proxy` in front of its inference API, and `mlwatch agent --scrape`
turning its metrics API into samples, both sending to a real `mlwatch server`."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.agent.prometheus import MAX_METRICS, PrometheusCollector, metric_key, parse
from monitor.records import HostSample
from monitor.store import Store
from tests.collectors.conftest import register, stored
from tests.collectors.mlflow_serving import proxying
from tests.conftest import RunningServer, free_port

pytest.importorskip("torch", reason="pip install -c constraints.txt -e '.[dev]' (torch, torchserve)")
TORCHSERVE = shutil.which("torchserve", path=str(Path(sys.executable).parent)) or shutil.which("torchserve")
pytestmark = pytest.mark.skipif(not TORCHSERVE or not shutil.which("java"), reason="needs torchserve and Java 17")
FEATURES = ["f0", "f1", "f2", "f3"]

HANDLER = '''
import json, os
import torch

_model = None


def handle(data, context):
    """A linear classifier over rows of four numbers: {"instances": [[...], ...]} -> classes."""
    global _model
    if data is None:
        return None
    if _model is None:
        _model = torch.jit.load(os.path.join(context.system_properties["model_dir"], "model.pt"))
    replies = []
    for row in data:
        body = row.get("body") or row.get("data")
        if isinstance(body, (bytes, bytearray)):
            body = json.loads(body)
        with torch.no_grad():
            scores = _model(torch.tensor(body["instances"], dtype=torch.float32))
        replies.append({"predictions": scores.argmax(dim=1).tolist()})
    return replies
'''


def _archive(workdir: Path) -> Path:
    """tiny.mar: a scripted torch.nn.Linear(4, 3) and the handler above, in a fresh model store."""
    import torch

    torch.manual_seed(0)
    torch.jit.script(torch.nn.Linear(4, 3)).save(str(workdir / "model.pt"))
    (workdir / "handler.py").write_text(HANDLER)
    store = workdir / "store"
    store.mkdir()
    archiver = Path(TORCHSERVE or "").with_name("torch-model-archiver")
    argv = [str(archiver), "--model-name", "tiny", "--version", "1.0", "--serialized-file", str(workdir / "model.pt")]
    argv += ["--handler", str(workdir / "handler.py"), "--export-path", str(store)]
    subprocess.run(argv, check=True, timeout=120)
    return store


@pytest.fixture(scope="module")
def torchserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """TorchServe on three loopback ports with tiny.mar loaded; stopped with `torchserve --stop`."""
    workdir = tmp_path_factory.mktemp("torchserve")
    store = _archive(workdir)
    ports = {"inference": free_port(), "management": free_port(), "metrics": free_port()}
    config = workdir / "config.properties"
    config.write_text(
        "".join(f"{name}_address=http://127.0.0.1:{port}\n" for name, port in ports.items())
        + f"model_store={store}\nload_models=tiny.mar\ndisable_token_authorization=true\n"
        + "default_workers_per_model=1\nmetrics_mode=prometheus\n"
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "LOG_LOCATION": str(workdir)}
    log = (workdir / "torchserve.out").open("wb")
    argv = [
        str(TORCHSERVE),
        "--start",
        "--ncs",
        "--foreground",
        "--ts-config",
        str(config),
        "--model-store",
        str(store),
    ]
    proc = subprocess.Popen(argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        _wait_ready(urls["management"], proc, workdir)
        yield urls
    finally:
        subprocess.run([str(TORCHSERVE), "--stop"], env=env, cwd=workdir, capture_output=True, timeout=60)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_ready(management: str, proc: subprocess.Popen[bytes], workdir: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (workdir / "torchserve.out").read_text()[-3000:]
        try:
            workers = httpx.get(f"{management}/models/tiny", timeout=2).json()[0]["workers"]
            if workers and workers[0]["status"] == "READY":
                return
        except (httpx.HTTPError, ValueError, KeyError, IndexError):
            pass
        time.sleep(0.5)
    raise TimeoutError((workdir / "torchserve.out").read_text()[-3000:])


ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [0.0, 0.0, 0.0, 1.0]]


def test_predictions_through_the_proxy_are_answered_by_torchserve_and_stored_with_their_features(
    torchserve: dict[str, str], api: RunningServer, tmp_path: Path
) -> None:
    register(api, "tiny", FEATURES)
    path = "/predictions/tiny"
    with httpx.Client(base_url=torchserve["inference"], timeout=30) as direct:
        expected = [direct.post(path, json={"instances": [row]}).json()["predictions"] for row in ROWS]
    with proxying(torchserve["inference"], "tiny", api.url, api.token, tmp_path, "--path", path) as proxy_url:
        with httpx.Client(base_url=proxy_url, timeout=30) as proxied:
            answers = [proxied.post(path, json={"instances": [row]}) for row in ROWS]
            assert [a.json()["predictions"] for a in answers] == expected
        deadline = time.monotonic() + 30
        while len(rows := stored(api, "tiny")) < len(ROWS) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert sorted(tuple(r.features[f] for f in FEATURES) for r in rows) == sorted(tuple(row) for row in ROWS)
    by_features = {tuple(r.features[f] for f in FEATURES): r.prediction for r in rows}
    assert [by_features[tuple(row)] for row in ROWS] == [p[0] for p in expected]


def test_the_collector_turns_torchserve_metrics_into_a_sample_per_model(torchserve: dict[str, str]) -> None:
    httpx.post(f"{torchserve['inference']}/predictions/tiny", json={"instances": ROWS}, timeout=30).raise_for_status()
    url = f"{torchserve['metrics']}/metrics"
    samples = {s.name: s for s in PrometheusCollector(url, job="torchserve", clock=lambda: 1000.0).collect()}
    assert {"torchserve", "torchserve/tiny"} <= set(samples)
    model = samples["torchserve/tiny"]
    assert (model.kind, model.ts) == ("process", 1000.0)
    assert model.metrics["ts_inference_requests_total"] >= 1
    assert samples["torchserve"].metrics["MemoryUsed"] > 0  # host-level series go under the job


def test_the_parser_reads_labels_with_escapes_and_torchserves_trailing_comma() -> None:
    text = '# HELP x help\n# TYPE x gauge\nx{a="q\\"uote",ModelName="m",} 1.5\ny 2 1700000000000\nbad{ 3\nz NaN\n'
    series = list(parse(text))
    assert series[:2] == [("x", {"a": 'q"uote', "ModelName": "m"}, 1.5), ("y", {}, 2.0)]
    assert metric_key("x", series[0][1]) == 'x{a=q"uote}'
    samples = PrometheusCollector("http://h:1/metrics", get=lambda _: text, clock=lambda: 1.0).collect()
    assert samples == (
        HostSample(1.0, "process", "h:1/m", {'x{a=q"uote}': 1.5}),
        HostSample(1.0, "process", "h:1", {"y": 2.0}),
    )


def test_a_model_with_more_series_than_the_api_takes_is_cut_to_the_first_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = "".join(f'm{i}{{model_name="big"}} {i}\n' for i in range(MAX_METRICS + 5))
    collector = PrometheusCollector("http://h:1/metrics", get=lambda _: text)
    with caplog.at_level(logging.WARNING, logger="monitor.agent"):
        (sample,) = collector.collect()
        collector.collect()
    assert list(sample.metrics) == [f"m{i}" for i in range(MAX_METRICS)]
    assert [r.getMessage() for r in caplog.records] == [
        f"mlwatch agent: h:1/big has more than {MAX_METRICS} series; the first {MAX_METRICS} are sent"
    ]  # said once


def test_mlwatch_agent_scrape_sends_torchserve_metrics_to_the_server(
    torchserve: dict[str, str], api: RunningServer
) -> None:
    url = f"{torchserve['metrics']}/metrics"
    env = {**os.environ, "MLWATCH_URL": api.url, "MLWATCH_TOKEN": api.token}
    argv = [sys.executable, "-m", "monitor", "agent", "--once", "--host-name", "ts-box", "--scrape", url]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    store = Store.open(api.store_url)
    try:
        found = store.host_samples(time.time() - 600, time.time() + 60, host="ts-box", kind="process")
    finally:
        store.close()
    names = {sample.name: sample for _, sample in found}
    job = url.removeprefix("http://").removesuffix("/metrics")
    assert f"{job}/tiny" in names, sorted(names)
    assert json.dumps(names[f"{job}/tiny"].metrics)  # stored as it came
    assert names[f"{job}/tiny"].metrics["ts_inference_requests_total"] >= 1
