"""A model trained on integer-coded categories answers rows typed like its training data.

References often code categories as integers (zip codes, education levels); the service's
schema accepts a category as a string, an integer or a boolean. The model is trained on
category keys, and ``mlwatch serve`` turns what a request sends into the same keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from monitor.drift.reference import keep_reference
from monitor.records import Feature
from monitor.settings import load_settings
from monitor.store import Store
from retrain.actions import request_retrain
from retrain.registry import Registry
from retrain.runner import JobRunner
from tests.conftest import free_port, stop_process, wait_http

FEATURES = (Feature("income"), Feature("elevel", "categorical"), Feature("zipcode", "categorical"))
PARAMS = {"estimator": "decision_tree", "estimator_params": {"max_depth": 4, "random_state": 0}}


def _coded_reference(n: int) -> pd.DataFrame:
    """Integer codes as a reference file holds them; the label is decided by the education level."""
    rng = np.random.default_rng(3)
    elevel = rng.integers(0, 5, n)
    zipcode = rng.choice([10115, 20095, 80331], n)
    return pd.DataFrame({"income": rng.normal(50, 10, n), "elevel": elevel, "zipcode": zipcode, "label": elevel >= 3})


def _write_config(work: Path) -> None:
    config = {
        "store_url": f"sqlite:///{work / 'mlwatch.db'}",
        "mlflow_tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
        "services": [
            {
                "name": "loans",
                "task": "classification",
                "target": "label",
                "features": [{"name": f.name, "type": f.type} for f in FEATURES],
            }
        ],
        "retrain": [{"service": "loans", "auto_promote": True, "params": PARAMS}],
    }
    (work / "mlwatch.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlwatch serve loans`` with a champion trained on the integer-coded reference."""
    work = tmp_path_factory.mktemp("coded")
    _write_config(work)
    settings = load_settings(work / "mlwatch.yaml", environ={})
    store = Store.open(settings.store_url)
    service = store.upsert_service("loans", task="classification", target="label", features=FEATURES)
    keep_reference(store, service, _coded_reference(600))
    request_retrain(store, settings, "loans", actor="test")
    job = store.claim_job("test")
    assert job is not None
    JobRunner(store, settings, Registry.from_settings(settings, store)).run(job)
    store.close()
    port = free_port()
    env = {**os.environ, "MLWATCH_URL": "http://127.0.0.1:9", "MLWATCH_TOKEN": "none"}
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "loans", "--port", str(port), "--no-probabilities"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/ping", timeout=90, proc=process)
        yield url
    finally:
        stop_process(process)


def _score(url: str, rows: list[dict[str, object]]) -> list[object]:
    answer = httpx.post(f"{url}/invocations", json={"dataframe_records": rows}, timeout=30)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["predictions"])


def test_integer_and_string_category_codes_score_alike(serving: str) -> None:
    as_ints = [{"income": 50.0, "elevel": level, "zipcode": 20095} for level in range(5)]
    as_text = [{"income": 50.0, "elevel": str(level), "zipcode": "20095"} for level in range(5)]
    predictions = _score(serving, as_ints)
    assert predictions == _score(serving, as_text)
    assert [bool(p) for p in predictions] == [False, False, False, True, True]


def test_float_coded_categories_score_like_their_integer_codes(serving: str) -> None:
    as_floats = [{"income": 50.0, "elevel": float(level), "zipcode": 80331.0} for level in range(5)]
    as_ints = [{"income": 50.0, "elevel": level, "zipcode": 80331} for level in range(5)]
    assert _score(serving, as_floats) == _score(serving, as_ints)
