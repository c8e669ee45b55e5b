"""Per-service check settings: set in mlwatch.yaml or at registration, read back in one place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config import CheckSettings
from monitor.errors import ValidationFailed
from monitor.server.app import sync_services
from monitor.settings import load_settings
from monitor.store import Store


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()


def test_a_configured_drift_share_reaches_the_stored_service(tmp_path: Path, sqlite_store: Store) -> None:
    config = tmp_path / "mlwatch.yaml"
    config.write_text("services:\n  - {name: credit, drift_share: 0.3, window: 15m, reference: ref.parquet}\n")
    sync_services(load_settings(config, environ={}), sqlite_store)
    settings = CheckSettings.of(sqlite_store.get_service("credit"))
    assert (settings.drift_share, settings.window, settings.sample_size) == (0.3, 900.0, 20_000)


def test_a_config_stored_before_drift_share_existed_reads_with_the_defaults() -> None:
    stored = {
        "window": 3600.0,
        "reference": "data/reference.parquet",
        "latency_bound_ms": None,
        "sample_size": 5000,
        "multivariate": {"enabled": True, "methods": ["pca"], "max_rows": 5000, "variance": 0.65},
        "text": {"descriptors": True, "embeddings": False},
    }
    settings = CheckSettings.decode(stored)
    assert (settings.sample_size, settings.drift_share, settings.multivariate.methods) == (5000, 0.5, ("pca",))
    assert CheckSettings.decode({}) == CheckSettings()


def test_a_stored_setting_out_of_range_is_refused_naming_it() -> None:
    with pytest.raises(ValidationFailed, match=r"stored check settings are invalid: drift_share: .*less than or equal"):
        CheckSettings.decode({"drift_share": 2})
    with pytest.raises(ValidationFailed, match=r"drift_share: Input should be greater than 0"):
        CheckSettings.decode({"drift_share": 0})
