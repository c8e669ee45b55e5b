"""Configuration: YAML plus MLWATCH_* overrides, validated once with messages naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import parse_duration
from monitor.errors import ConfigError
from monitor.settings import load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mlwatch.yaml"
    path.write_text(text)
    return path


def test_defaults_follow_the_design_contract() -> None:
    settings = load_settings(environ={})
    assert settings.store_url == "sqlite:///.mlwatch/mlwatch.db"
    assert settings.mlflow_tracking_uri == "sqlite:///.mlwatch/mlflow.db"
    assert (settings.server_host, settings.server_port) == ("127.0.0.1", 8000)


def test_mlflow_tracking_uri_defaults_to_the_mlflow_variable() -> None:
    settings = load_settings(environ={"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "store_url: sqlite:///a.db\nserver_port: 9000\n")
    settings = load_settings(path, environ={"MLWATCH_STORE_URL": "postgresql://db/x", "MLWATCH_BOOTSTRAP_TOKEN": "123"})
    assert (settings.store_url, settings.server_port, settings.bootstrap_token) == ("postgresql://db/x", 9000, "123")


def test_service_section_is_parsed_with_durations(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "services:\n  - name: credit\n    task: regression\n    window: 15m\n"
        "    features: [{name: age}, {name: city, type: categorical}]\n",
    )
    (service,) = load_settings(path, environ={}).services
    assert (service.task, service.window, service.features[1].type) == ("regression", 900.0, "categorical")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  - name: credit\n    task: clustering\n", r"services\.0\.task: Input should be 'classification'"),
        ("server_port: high\n", r"server_port: Input should be a valid integer"),
        ("stor_url: x\n", r"stor_url: Extra inputs are not permitted"),
        ("services:\n  - name: credit\n    window: soon\n", r"services\.0\.window: .*expected a duration"),
        ("- just\n- a list\n", r"expected a mapping of keys at the top level"),
        ("a: [unclosed\n", r"is not valid YAML"),
    ],
)
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_write(tmp_path, text), environ={})


def test_bad_environment_value_names_the_variable_key() -> None:
    with pytest.raises(ConfigError, match=r"max_body_bytes: Input should be a valid integer"):
        load_settings(environ={"MLWATCH_MAX_BODY_BYTES": "lots"})


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={})


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), (30, 30)])
def test_durations_accept_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_the_example_configuration_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "mlwatch.yaml"
    settings = load_settings(example, environ={"MLWATCH_WEBHOOK_SECRET": "s3cret"})
    assert [a.kind for a in settings.alerts][:3] == ["drift_share", "feature_drift", "quality_decay"]
    assert settings.retrain_policy("credit").trigger == "on_alert"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "services:\n  - name: credit\n    features: [{name: age, drift_method: bogus}]\n",
            r"services\.0\.features\.0: .*drift_method: expected a stattest for numerical features, .*wasserstein",
        ),
        (
            "services:\n  - name: credit\n    features: [{name: city, type: categorical, drift_method: ks}]\n",
            r"drift_method: expected a stattest for categorical features",
        ),
        ("services:\n  - name: credit\n    window: 0s\n", r"services\.0\.window: .*expected a positive duration"),
        ("check_interval: 0\n", r"check_interval: .*expected a positive duration"),
        ("alerts:\n  - {name: a, kind: drift_share, threshold: .nan}\n", r"alerts\.0\.threshold: .*finite number"),
        ("alerts:\n  - {name: a, kind: drift_share, threshold: .inf}\n", r"alerts\.0\.threshold: .*finite number"),
        ("alerts:\n  - {name: a, kind: drift_share, repeat_interval: 0s}\n", r"repeat_interval: .*positive duration"),
        ("services:\n  - name: credit\n    window: 99999999999999d\n", r"window: .*from 0 to 100 years"),
        ("alerts:\n  - {name: a, kind: drift_share, options: {x: " + "[" * 40 + "]" * 40 + "}}\n", "nested at most"),
    ],
    ids=["unknown method", "method of another type", "zero window", "zero interval", "NaN", "inf", "zero repeat",
         "overflowing duration", "deep options"],
)  # fmt: skip
def test_settings_that_would_break_later_are_refused_at_load(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_write(tmp_path, text), environ={})


def test_the_drift_methods_are_evidentlys_stattests() -> None:
    from evidently.legacy.core import ColumnType

    from monitor.config import DRIFT_METHODS
    from monitor.drift.stattests import _registered_stat_tests

    names = {ColumnType.Numerical: "numerical", ColumnType.Categorical: "categorical", ColumnType.Text: "text"}
    registered = {
        method: frozenset(names[kind] for test in by_type.values() for kind in test.allowed_feature_types)
        for method, by_type in _registered_stat_tests.items()
    }
    assert registered == DRIFT_METHODS


def test_text_with_a_nul_or_a_lone_surrogate_is_refused() -> None:
    from monitor.config import storable_text

    assert storable_text("paris, é, 東京") == "paris, é, 東京"
    with pytest.raises(ValueError, match="a NUL character at 2"):
        storable_text("ab\x00")
    with pytest.raises(ValueError, match="a lone surrogate at 0"):
        storable_text("\ud800x")


def test_settings_read_back_as_they_were_dumped(tmp_path: Path) -> None:
    """The retrain process gets the settings as JSON: every section must validate again, defaults included."""
    from monitor.config import Settings

    config = tmp_path / "mlwatch.yaml"
    config.write_text(
        "services:\n  - {name: credit, model_name: credit, target: default}\n"
        "webhooks:\n"
        "  - {name: plain, url: 'http://127.0.0.1:9/hook', format: json}\n"
        "  - {name: grouped, url: 'http://127.0.0.1:9/am', format: alertmanager,"
        " group_by: [service], group_wait: 10s}\n"
        "  - name: mail\n    format: email\n    url: 'smtp://127.0.0.1:2525'\n"
        "    email: {from: 'mlwatch@example.com', to: ['oncall@example.com']}\n"
        "inhibit_rules:\n  - {source_match: {kind: no_data}, target_match: {kind: drift_share}, equal: [service]}\n"
        "cloudevents: {services: {sklearn-credit: credit}}\n"
    )
    settings = load_settings(config)
    again = Settings.model_validate_json(settings.model_dump_json(by_alias=True))
    assert again == settings
