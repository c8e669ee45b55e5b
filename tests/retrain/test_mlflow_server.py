"""The same flow against a real ``mlflow server`` process with a PostgreSQL backend.

mlwatch's store is on PostgreSQL too, so promotions are serialized by its advisory lock;
artifacts go through the server (``--artifacts-destination``), as in a multi-machine setup.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text

from monitor.config import RetrainConfig, Settings
from monitor.drift.reference import keep_reference
from monitor.store import Store
from retrain import actions
from retrain.registry import Registry
from retrain.runner import JobRunner
from retrain.serving import ChampionLoader
from tests.conftest import free_port, wait_http
from tests.retrain.scenario import frame, register, send_traffic

PARAMS = {"estimator": "random_forest", "estimator_params": {"n_estimators": 20, "max_depth": 8, "random_state": 0}}


@dataclass
class Remote:
    store: Store
    settings: Settings
    registry: Registry


def _schema(base: str, admin: object, name: str) -> str:
    with admin.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f"CREATE SCHEMA {name}"))
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{name}"


@pytest.fixture(scope="module")
def remote(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    tmp = tmp_path_factory.mktemp("mlflow-server")
    admin = create_engine(postgres_server.replace("postgresql://", "postgresql+psycopg://", 1))
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    mlflow_db = _schema(postgres_server.replace("postgresql://", "postgresql+psycopg://", 1), admin, names[0])
    store_url = _schema(postgres_server, admin, names[1])
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", mlflow_db, "--artifacts-destination",
         str(tmp / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=(tmp / "mlflow.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=server)
        store = Store.open(store_url, migrate=True)
        retrain = (RetrainConfig(service="credit", auto_promote=True, params=PARAMS),)
        settings = Settings(store_url=store_url, mlflow_tracking_uri=f"http://127.0.0.1:{port}", retrain=retrain)
        yield Remote(store, settings, Registry.from_settings(settings, store))
        store.close()
    finally:
        server.terminate()
        server.wait(30)
        with admin.begin() as conn:
            for name in names:
                conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


def _run(remote: Remote) -> dict[str, object]:
    actions.request_retrain(remote.store, remote.settings, "credit", actor="test")
    claimed = remote.store.claim_job("w")
    assert claimed is not None
    return JobRunner(remote.store, remote.settings, remote.registry).run(claimed)


def test_retrain_promotion_serving_and_rollback_through_a_remote_registry(remote: Remote) -> None:
    service = register(remote.store)
    keep_reference(remote.store, service, frame(1500, seed=1))
    assert _run(remote)["decision"] == "promote"
    send_traffic(remote.store, service, frame(1200, seed=2, drifted=True), version="1")
    result = _run(remote)
    assert (result["version"], result["decision"]) == ("2", "promote")
    uri = remote.settings.mlflow_tracking_uri
    loader = ChampionLoader(remote.registry.client, "credit", uri)
    assert loader.champion() == "2"
    loaded = loader.load("2")
    rows = frame(5, seed=3).drop(columns="label")
    predictions = list(loaded.predict(rows))
    assert len(predictions) == 5 and loaded.predict_proba is not None
    probabilities = loaded.predict_proba(rows)  # keyed by class, as checks key predictions
    assert [max(p, key=p.__getitem__) for p in probabilities] == [str(int(v)) for v in predictions]
    assert ChampionLoader(remote.registry.client, "credit", uri, probabilities=False).load("2").predict_proba is None
    done = actions.rollback(remote.store, remote.settings, "credit", actor="test", registry=remote.registry)
    assert (done.champion, done.previous) == ("1", "2") and loader.champion() == "1"


def test_concurrent_promotions_through_a_remote_registry_stay_consistent(remote: Remote) -> None:
    client = remote.registry.client
    name = f"m-{uuid.uuid4().hex[:8]}"
    service = register(remote.store, "race", model=name)
    client.create_registered_model(name)
    run_id = client.create_run("0").info.run_id
    client.log_text(run_id, "placeholder", "model/MLmodel")
    for _ in range(4):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    barrier = threading.Barrier(4)

    def promote(version: str) -> None:
        own = Registry.from_settings(remote.settings, remote.store)
        barrier.wait()
        own.promote(service, version, actor=f"t{version}", reason="race")

    threads = [threading.Thread(target=promote, args=(str(v),)) for v in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    champions = [h for h in reversed(remote.registry.history("race")) if h.alias == "champion"]
    aliases = remote.registry.aliases(name)
    assert len(champions) == 4 and aliases["champion"] == champions[-1].to_version
    assert aliases["previous"] == champions[-1].from_version != aliases["champion"]
