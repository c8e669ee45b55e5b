"""Fixtures of the dashboard tests: a seeded SQLite store and an AppTest of the app against it.

An AppTest signs in the way a browser does, with a real session in the store; it hands the
cookie over in ``st.session_state`` (``session.SESSION_KEY``) because AppTest sends no cookies.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

from dashboard.access import Viewer, user_credential
from dashboard.passwords import hash_password
from dashboard.session import SESSION_KEY
from dashboard.signins import SignIns, session_key
from monitor.check_summary import CheckSummary
from monitor.records import Feature, HostSample, LabelRecord, PredictionRecord
from monitor.settings import load_settings
from monitor.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PASSWORD = "correct horse battery staple"
SECRET = "a dashboard secret of forty-odd characters, for tests"
USERS = {
    "olga": "operator",
    "vic": "viewer",
    **{f"{role}-user": role for role in ("viewer", "operator", "admin")},
}
"""Configured users and their roles; ``open_app(role)`` signs in as ``<role>-user``."""


def seed(store: Store, now: float) -> None:
    """Three services: a healthy one, a slow drifting one, and one without traffic; agent samples."""
    features = (Feature("income"), Feature("region", "categorical"))
    credit = store.upsert_service("credit", task="classification", features=features, config={"latency_bound_ms": 50.0})
    fraud = store.upsert_service("fraud", task="classification", features=features, config={"latency_bound_ms": 20.0})
    store.upsert_service("churn", task="regression", features=features)
    for service, latency, version in ((credit, 10.0, "1"), (fraud, 80.0, "3")):
        records = [
            PredictionRecord(
                request_id=f"{service.name}-{i}",
                ts=now - 3600 + i * 30,
                features={"income": 1000.0 + i, "region": "north" if i % 2 else "south"},
                prediction=i % 2,
                latency_ms=latency + i % 7,
                model_version=version,
                status="error" if i % 25 == 0 else "ok",
            )
            for i in range(120)
        ]
        store.add_predictions(service, records)
        store.add_labels(service, [LabelRecord(f"{service.name}-{i}", i % 2, now) for i in range(0, 120, 3)])
    add_checks(store, now)
    add_alert(store, now)
    store.add_host_samples(
        "gpu-box-1",
        [
            HostSample(now - 600 + 60 * i, "host", "", {"cpu_percent": 20.0 + i, "memory_percent": 40.0})
            for i in range(10)
        ]
        + [
            HostSample(now - 600 + 60 * i, "gpu", "0", {"gpu_utilization": 70.0, "gpu_memory_used_mb": 9000.0})
            for i in range(10)
        ],
    )


SEGMENTS = {
    "columns": ["region"],
    "metric": "accuracy",
    "segments": [
        {"column": "region", "value": "<b>eu</b>", "rows": 80, "drift_share": 0.5, "drifted_features": ["income"],
         "reference": "segment", "reference_rows": 500, "quality": 0.6, "quality_source": "realized", "labelled": 40},
        {"column": "region", "value": "us", "rows": 40, "drift_share": 0.0, "reference": "whole",
         "reference_rows": 2000, "quality": 0.9, "quality_source": "realized", "labelled": 20},
    ],
    "cohorts": [
        {"segment": {"region": "<b>eu</b>"}, "metric": "accuracy", "source": "realized", "rows": 40, "quality": 0.6,
         "baseline": 0.9, "baseline_rows": 500, "baseline_source": "reference", "drop": 0.3, "lower": 0.15,
         "significant": True},
        {"segment": {"region": "us"}, "metric": "accuracy", "source": "realized", "rows": 20, "quality": 0.88,
         "baseline": 0.9, "baseline_rows": 2000, "baseline_source": "first_window", "drop": 0.02, "lower": -0.1,
         "significant": False},
    ],
    "skipped": {"channel": "no sampled prediction sends this key"},
}  # fmt: skip
"""The newer check's segments: a value with markup in it, which must stay text."""


def add_checks(store: Store, now: float) -> None:
    """Two checks of ``fraud``: the older without drift, the newer with drift and decayed quality."""
    fraud = store.get_service("fraud")
    for age, drifted, f1 in ((1800, False, 0.81), (300, True, 0.62)):
        features = [
            {
                "name": "income",
                "type": "numerical",
                "method": "wasserstein",
                "score": 0.4 if drifted else 0.02,
                "threshold": 0.1,
                "drifted": drifted,
            },
            {
                "name": "region",
                "type": "categorical",
                "method": "jensenshannon",
                "score": 0.05,
                "threshold": 0.1,
                "drifted": False,
            },
        ]
        store.add_check(
            fraud,
            window_start=now - age - 3600,
            window_end=now - age,
            model_version="3",
            status="ok",
            trigger="schedule",
            summary=CheckSummary.decode(
                {
                    "rows": 120,
                    "drift_share": 0.5 if drifted else 0.0,
                    "dataset_drift": drifted,
                    "drifted_features": ["income"] if drifted else [],
                    "label_coverage": 0.33,
                    "quality": {"f1": f1, "accuracy": f1 + 0.05},
                    "estimated_quality": {"f1": f1 + 0.02},
                    "baseline": {"f1": 0.8, "accuracy": 0.85},
                    "multivariate": {
                        "drifted": drifted,
                        "methods": {"pca": {"score": 1.4 if drifted else 0.2, "upper": 0.3, "drifted": drifted}},
                        "skipped": {},
                    },
                    "segments": SEGMENTS,
                }
            ),
            results={"features": features},
        )


def add_alert(store: Store, now: float) -> None:
    """One firing alert on ``fraud`` (through the alert store's own insert)."""
    labels = {"rule": "fraud-latency", "kind": "latency", "severity": "critical", "service": "fraud"}
    values = {
        "fingerprint": "f" * 16, "rule": "fraud-latency", "kind": "latency", "service": "fraud", "state": "firing",
        "severity": "critical", "labels": labels, "value": 80.0, "threshold": 20.0,
        "summary": "p95 latency 80 ms over 20 ms", "started_at": now - 900, "fired_at": now - 600,
    }  # fmt: skip
    with store.engine.begin() as conn:
        store.insert_alert(conn, values)


@pytest.fixture
def seeded_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    store = Store.open(url)
    seed(store, time.time())
    store.close()
    return url


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "mlwatch.yaml"
    users = [{"username": name, "password_hash": password_hash(), "role": role} for name, role in USERS.items()]
    hooks = [{"name": "ops", "url": "https://hooks.example.com/mlwatch", "format": "json"}]
    path.write_text(yaml.safe_dump({"users": users, "webhooks": hooks, "dashboard_secret": SECRET}))
    return path


@functools.cache
def password_hash() -> str:
    """One argon2id hash of ``PASSWORD`` for every user (hashing costs about 0.1 s on purpose)."""
    return hash_password(PASSWORD)


def signed_in(username: str) -> str:
    """A session cookie of configured user ``username``, opened in the configured store."""
    settings = load_settings()
    store = Store.open(settings.store_url)
    try:
        user = next(u for u in settings.users if u.username == username)
        viewer = Viewer(user.username, user.role, user_credential(user))
        return SignIns(store, lambda: settings, session_key(settings)).sign_in(viewer)
    finally:
        store.close()


@pytest.fixture
def dashboard_env(monkeypatch: pytest.MonkeyPatch, seeded_url: str, config_file: Path) -> Iterator[str]:
    """Point the dashboard at the seeded store and config; empty Streamlit's caches around each test."""
    monkeypatch.setenv("MLWATCH_STORE_URL", seeded_url)
    monkeypatch.setenv("MLWATCH_CONFIG", str(config_file))
    _clear_caches()
    yield seeded_url
    _clear_caches()


def _clear_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def open_app(dashboard_env: str) -> Callable[..., AppTest]:
    """An AppTest of the dashboard, logged in as ``role`` (None: not logged in), on ``page``."""

    def opener(role: str | None = "operator", page: str | None = None, **query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        at.context["timezone"] = "Europe/Berlin"
        if role:
            at.session_state[SESSION_KEY] = signed_in(f"{role}-user")
        at.query_params.update(query)
        at.run()
        if page:
            at.switch_page(page).run()
        return at

    return opener
