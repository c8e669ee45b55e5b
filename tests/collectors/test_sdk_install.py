"""``pip install mlwatch`` into an empty environment brings no third-party package, and a
FastAPI service with the middleware runs from it and delivers to a real ``mlwatch server``.

The wheel is built from a copy of the sources with this environment's setuptools (no build
isolation, so no download), and installed with ``--no-index`` and no pip configuration: had
it any dependency, pip could not find it and the install would fail. Only after checking
what that environment holds are FastAPI and uvicorn installed into it (from the package
index, pinned by constraints.txt), for the service itself; the SDK comes from the wheel,
never from this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.collectors.conftest import register, stored
from tests.conftest import RunningServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
"""No PYTHONPATH into this checkout: the wheel's copy is what runs."""
ISOLATED = {k: v for k, v in OUTSIDE.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
"""Nor any pip configuration (find-links, extra indexes, constraints): with ``--no-index`` pip finds nothing."""


def _check(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def sdk_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``mlwatch`` wheel, built from a copy of this checkout's sources (none of its build output)."""
    work = tmp_path_factory.mktemp("sdk-wheel")
    source = work / "source"
    for package in ("monitor", "retrain", "dashboard"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(work), str(source)]
    _check(build, ISOLATED, work)
    (wheel,) = work.glob("mlwatch-*.whl")
    return wheel


@pytest.fixture
def sdk_venv(sdk_wheel: Path, tmp_path: Path) -> Path:
    """An environment of its own with nothing but that wheel installed (no extra)."""
    venv = tmp_path / "venv"
    _check([sys.executable, "-m", "venv", str(venv)], ISOLATED, tmp_path)
    _check([str(venv / "bin/python"), "-m", "pip", "install", "--no-index", str(sdk_wheel)], ISOLATED, tmp_path)
    return venv


def _python(venv: Path, code: str, cwd: Path, *args: str) -> str:
    return _check([str(venv / "bin/python"), "-c", code, *args], ISOLATED, cwd)


DISTRIBUTIONS = (
    "import importlib.metadata as m, json; print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))"
)

THIRD_PARTY_AFTER_IMPORT = """
import sys
before = set(sys.modules)  # what site loaded: setuptools' .pth hook among them
import importlib, json, pkgutil
import monitor, monitor.sdk
for info in pkgutil.iter_modules(monitor.sdk.__path__, "monitor.sdk."):
    importlib.import_module(info.name)
from monitor.sdk import Tracker
tracker = Tracker("sdk-only", url="http://127.0.0.1:9", spool_dir=sys.argv[1])
text = tracker.metrics_text()
tracker.close(timeout=0)
try:
    Tracker("sdk-only", store_url="sqlite:///x.db", spool_dir=sys.argv[1])
    refused = ""
except ImportError as exc:
    refused = str(exc)
tops = {name.partition(".")[0] for name in set(sys.modules) - before}
print(json.dumps({
    "file": monitor.__file__,
    "third_party": sorted(tops - set(sys.stdlib_module_names) - {"monitor", "__main__"}),
    "metrics": "mlwatch_sdk_sent_records_total" in text,
    "store_url": refused,
}))
"""


def test_the_sdk_installs_alone_and_imports_nothing_but_the_standard_library(sdk_venv: Path, tmp_path: Path) -> None:
    assert set(json.loads(_python(sdk_venv, DISTRIBUTIONS, tmp_path))) - {"pip", "setuptools"} == {"mlwatch"}
    seen = json.loads(_python(sdk_venv, THIRD_PARTY_AFTER_IMPORT, tmp_path, str(tmp_path / "spool")))
    assert seen["file"].startswith(str(sdk_venv))  # the wheel's copy, not this checkout
    assert seen["third_party"] == []
    assert seen["metrics"]
    assert "pip install 'mlwatch[server]'" in seen["store_url"]


def test_the_command_without_the_server_side_prints_the_install_command(sdk_venv: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(sdk_venv / "bin/mlwatch"), "server"],
        env=ISOLATED,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("pip install 'mlwatch[server]'")


SERVICE = """
import json, socket, sys, threading, urllib.request
import uvicorn
from fastapi import FastAPI
from monitor.sdk import MlwatchASGIMiddleware, Tracker

url, token, spool = sys.argv[1:4]
tracker = Tracker("sdk-venv", url=url, token=token, spool_dir=spool)
app = FastAPI()

@app.post("/predict")
def predict(body: dict) -> dict:
    return {"prediction": 1 if body["x"] > 0 else 0}

app.add_middleware(MlwatchASGIMiddleware, tracker=tracker, paths=("/predict",))
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()  # bound and listening before uvicorn starts: the request below waits in the backlog
server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
thread.start()
port = sock.getsockname()[1]
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/predict", data=b'{"x": 2.5}', headers={"Content-Type": "application/json"}
)
reply = json.load(urllib.request.urlopen(request, timeout=60))
delivered = tracker.flush(timeout=60)
server.should_exit = True
thread.join()
print(json.dumps({"reply": reply, "delivered": delivered, "sent": tracker.stats().sent}))
"""


def test_a_fastapi_service_with_the_middleware_runs_from_the_sdk_install(
    sdk_venv: Path, api: RunningServer, tmp_path: Path
) -> None:
    assert set(json.loads(_python(sdk_venv, DISTRIBUTIONS, tmp_path))) - {"pip", "setuptools"} == {"mlwatch"}
    # FastAPI and uvicorn are the service's own dependencies, added once the SDK alone was checked
    pip = [str(sdk_venv / "bin/python"), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt")]
    _check([*pip, "fastapi", "uvicorn"], OUTSIDE, tmp_path)
    register(api, "sdk-venv", ["x"])
    out = _python(sdk_venv, SERVICE, tmp_path, api.url, api.token, str(tmp_path / "spool"))
    assert json.loads(out) == {"reply": {"prediction": 1}, "delivered": True, "sent": 1}
    (row,) = stored(api, "sdk-venv")
    assert (row.features, row.prediction) == ({"x": 2.5}, 1)
