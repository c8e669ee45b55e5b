"""Configuration: ``mlwatch.yaml`` overridden by ``MLWATCH_<KEY>`` environment variables.

Validated once, at the edge, into frozen pydantic models that are then passed explicitly.
Nothing here reads the environment at import time.

    >>> settings = load_settings()            # ./mlwatch.yaml, $MLWATCH_CONFIG, or defaults
    >>> settings.store_url
    'sqlite:///.mlwatch/mlwatch.db'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: object) -> float:
    """Return seconds for ``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '15m' or '1h', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as '30s', '15m', '1h' or '7d', got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in config as ``30s``, ``15m``, ``1h``, ``7d`` or a number."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


FeatureType = Literal["numerical", "categorical", "text"]
Task = Literal["classification", "regression"]
Severity = Literal["info", "warning", "critical"]


class FeatureSpec(_Frozen):
    """One model input: its name and how drift and quality treat it."""

    name: str = Field(min_length=1, max_length=200)
    type: FeatureType = "numerical"
    drift_method: str | None = None
    drift_threshold: float | None = None


class ServiceConfig(_Frozen):
    """A monitored model service."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    task: Task = "classification"
    model_name: str | None = None
    target: str | None = None
    window: Duration = 3600.0
    reference: str | None = None
    features: tuple[FeatureSpec, ...] = ()
    latency_bound_ms: float | None = None
    sample_size: int = Field(default=20_000, ge=100, le=1_000_000)


class WebhookConfig(_Frozen):
    """A webhook receiver and what it is sent."""

    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    format: Literal["json", "slack"] = "json"
    secret_env: str | None = None
    min_severity: Severity = "info"
    match_labels: dict[str, str] = Field(default_factory=dict)
    events: tuple[str, ...] = ()
    timeout: Duration = 5.0
    retry_horizon: Duration = 24 * 3600.0
    backoff_initial: Duration = 2.0
    backoff_max: Duration = 600.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from monitor.webhooks.receivers import check_url_syntax

        return check_url_syntax(value)

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from monitor.webhooks.events import check_event_patterns

        return check_event_patterns(value)


class AlertRuleConfig(_Frozen):
    """An alert rule; ``kind`` picks what it watches."""

    name: str = Field(min_length=1)
    kind: str
    service: str | None = None
    host: str | None = None
    model_version: str | None = None
    feature: str | None = None
    metric: str | None = None
    threshold: float = 0.0
    for_: Duration = Field(default=0.0, alias="for")
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    repeat_interval: Duration = 4 * 3600.0
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        from monitor.alerts.kinds import check_kind_name

        return check_kind_name(value)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> AlertRuleConfig:
        from monitor.alerts.kinds import check_rule

        check_rule(self)
        return self


class GateConfig(_Frozen):
    """When a challenger may replace the champion."""

    metric: str = "f1"
    min_gain: float = 0.0
    min_relative_gain: float = 0.0
    floors: dict[str, float] = Field(default_factory=dict)


class RetrainConfig(_Frozen):
    """Retraining policy of one service."""

    service: str
    trigger: Literal["on_alert", "manual"] = "manual"
    mode: Literal["retrain", "fine_tune"] = "retrain"
    auto_promote: bool = False
    gate: GateConfig = GateConfig()
    trainer: str = "sklearn"
    project_uri: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    data_window: Duration = 7 * 86400.0
    max_production_rows: int = Field(default=200_000, ge=0)
    recency_half_life: Duration | None = None
    reference_weight: float = Field(default=1.0, ge=0.0)
    """Sample weight of reference rows in training (production rows weigh 1, or less with age);
    lower it when the concept has changed, 0 trains on production data alone."""
    cooldown: Duration = 3600.0
    daily_cap: int = Field(default=3, ge=0)
    timeout: Duration = 3600.0


class RetentionConfig(_Frozen):
    """How long raw rows are kept before the worker deletes them."""

    predictions: Duration = 30 * 86400.0
    host_samples: Duration = 7 * 86400.0
    traffic_rollups: Duration = 400 * 86400.0


class UserConfig(_Frozen):
    """A dashboard login; ``password_hash`` is made by ``mlwatch user hash``."""

    username: str
    password_hash: str
    role: Literal["viewer", "operator", "admin"] = "viewer"


class Settings(_Frozen):
    """Everything mlwatch is configured with."""

    store_url: str = "sqlite:///.mlwatch/mlwatch.db"
    mlflow_tracking_uri: str = "sqlite:///.mlwatch/mlflow.db"
    home: str = ".mlwatch"
    server_host: str = "127.0.0.1"
    server_port: int = Field(default=8000, ge=0, le=65535)
    dashboard_url: str | None = None
    """Where receivers reach the dashboard (e.g. ``https://mlwatch.example.com``); Slack messages
    link to it only when set, since a loopback default means nothing on a phone."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_batch_records: int = Field(default=10_000, ge=1)
    bootstrap_token: str | None = None
    check_interval: Duration = 60.0
    allow_private_webhooks: bool = False
    services: tuple[ServiceConfig, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()
    alerts: tuple[AlertRuleConfig, ...] = ()
    retrain: tuple[RetrainConfig, ...] = ()
    retention: RetentionConfig = RetentionConfig()
    users: tuple[UserConfig, ...] = ()

    def service(self, name: str) -> ServiceConfig | None:
        """The configured service called ``name``, if any."""
        return next((s for s in self.services if s.name == name), None)

    def retrain_policy(self, service: str) -> RetrainConfig:
        """The retrain policy of ``service`` (defaults where none is configured)."""
        found = next((r for r in self.retrain if r.service == service), None)
        return found or RetrainConfig(service=service)


ENV_PREFIX = "MLWATCH_"
# Variables with the prefix that belong to collectors or the CLI, not to Settings.
_NOT_SETTINGS = {"CONFIG", "URL", "TOKEN", "TEST_POSTGRES_URL", "SERVICE"}


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read, merge and validate the configuration; raise ConfigError naming the bad key."""
    env = os.environ if environ is None else environ
    raw = _read_yaml(_config_path(path, env))
    raw.setdefault("mlflow_tracking_uri", env.get("MLFLOW_TRACKING_URI") or Settings().mlflow_tracking_uri)
    raw.update(_env_overrides(env))
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    _check_cross_references(settings, env)
    return settings


def _check_cross_references(settings: Settings, env: Mapping[str, str]) -> None:
    """Checks that need more than one key (receiver URLs against ``allow_private_webhooks``)."""
    from monitor.webhooks.receivers import check_receivers

    check_receivers(settings, env)


def _config_path(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise ConfigError(f"config file {found} does not exist")
        return found
    if env.get("MLWATCH_CONFIG"):
        return _config_path(env["MLWATCH_CONFIG"], {})
    default = Path("mlwatch.yaml")
    return default if default.is_file() else None


def _read_yaml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``MLWATCH_STORE_URL=...`` → ``{"store_url": ...}``; values are parsed as YAML."""
    out: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key[len(ENV_PREFIX) :] in _NOT_SETTINGS:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in Settings.model_fields:
            continue
        try:
            out[name] = value if name.endswith(("_url", "_uri", "token")) else yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{key}: could not parse {value!r}: {exc}") from exc
    return out


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return "invalid configuration: " + "; ".join(parts)
