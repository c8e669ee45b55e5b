"""Fixtures of the retrain tests: an MLflow store per module, registered model versions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.records import Service
from monitor.store import Store
from retrain.registry import Registry, make_client
from tests.retrain.scenario import register


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite-backed MLflow tracking and registry store shared by a module's tests."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def versioned(store: Store, mlflow_uri: str, tmp_path: Path) -> Callable[[int], tuple[Registry, Service]]:
    """Make a fresh registered model with ``n`` versions (no training: aliases are what is tested)."""

    def make(n: int) -> tuple[Registry, Service]:
        client = make_client(mlflow_uri)
        name = f"m-{uuid.uuid4().hex[:8]}"
        service = register(store, "credit", model=name)
        registry = Registry(client, store)
        registry.ensure_model(name)
        (tmp_path / "model").mkdir(exist_ok=True)
        for _ in range(n):
            client.create_model_version(name, str(tmp_path / "model"))
        return registry, service

    return make
