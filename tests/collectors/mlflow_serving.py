"""A real ``mlflow models serve`` process with a small scikit-learn model trained on iris."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tests.conftest import free_port, wait_http

IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def train_iris_model(directory: Path) -> Path:
    """Fit a logistic regression on iris and save it as an MLflow model; return its path."""
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(features, target)
    path = directory / "iris-model"
    mlflow.sklearn.save_model(model, str(path))
    return path


@contextmanager
def serving(model: Path) -> Iterator[str]:
    """Run ``mlflow models serve`` on a free loopback port; yield its URL."""
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model), "--env-manager", "local"]
    with running([*cmd, "-p", str(port), "-h", "127.0.0.1"], env, f"http://127.0.0.1:{port}/ping", 120):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def proxying(target: str, service: str, api_url: str, token: str, spool: Path, *extra: str) -> Iterator[str]:
    """Run ``mlwatch proxy`` in front of ``target``; yield its URL."""
    port = free_port()
    env = {**os.environ, "MLWATCH_URL": api_url, "MLWATCH_TOKEN": token}
    cmd = [sys.executable, "-m", "monitor", "proxy", "--target", target, "--service", service]
    cmd += ["--listen", f"127.0.0.1:{port}", "--spool-dir", str(spool), *extra]
    with running(cmd, env, f"http://127.0.0.1:{port}/ping", 60):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def running(cmd: list[str], env: dict[str, str], ready_url: str, timeout: float) -> Iterator[None]:
    """Run ``cmd`` in its own session until the block ends; its output goes to a temp file.

    A pipe that nobody reads would fill with the access log and stall the server.
    """
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait(ready_url, proc, log, timeout)
            yield
        finally:
            stop_group(proc)


def _wait(url: str, proc: subprocess.Popen[bytes], log: IO[bytes], timeout: float) -> None:
    try:
        wait_http(url, timeout=timeout, proc=proc)
    except (RuntimeError, TimeoutError) as exc:
        log.seek(0)
        raise RuntimeError(f"{exc}\n{log.read().decode(errors='replace')[-3000:]}") from exc


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with its own session, and its children."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
