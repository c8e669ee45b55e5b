"""A real ``mlflow models serve`` process with a small scikit-learn model trained on iris."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    proc = subprocess.Popen(
        [*cmd, "-p", str(port), "-h", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its uvicorn child goes down with the group
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", timeout=120, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)


@contextmanager
def proxying(target: str, service: str, api_url: str, token: str, spool: Path, *extra: str) -> Iterator[str]:
    """Run ``mlwatch proxy`` in front of ``target``; yield its URL."""
    port = free_port()
    env = {**os.environ, "MLWATCH_URL": api_url, "MLWATCH_TOKEN": token}
    cmd = [sys.executable, "-m", "monitor", "proxy", "--target", target, "--service", service]
    proc = subprocess.Popen(
        [*cmd, "--listen", f"127.0.0.1:{port}", "--spool-dir", str(spool), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", timeout=60, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with its own session, and its children."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
