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
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d{1,15}(?:\.\d{1,15})?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
MAX_DURATION = 100 * 365 * 86400.0
"""The longest duration any setting takes (100 years): past it, adding one to a time can overflow."""


def parse_duration(value: object) -> float:
    """Return seconds for ``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '15m' or '1h', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value)[:100])
        if not match:
            raise ValueError(f"expected a duration such as '30s', '15m', '1h' or '7d', got {_shown(value)}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 <= seconds <= MAX_DURATION:  # also refuses NaN
        raise ValueError(f"expected a duration from 0 to 100 years, got {_shown(value)}")
    return seconds


def parse_positive_duration(value: object) -> float:
    """``parse_duration`` for intervals, where 0 would mean "again at once, forever"."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a positive duration such as '30s' or '4h', got {_shown(value)}")
    return seconds


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in config as ``30s``, ``15m``, ``1h``, ``7d`` or a number (0 to 100 years)."""
PositiveDuration = Annotated[float, BeforeValidator(parse_positive_duration)]
"""A ``Duration`` that must be above zero: windows, intervals, timeouts."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """``value`` if every backend can store it: no NUL character (PostgreSQL refuses it in
    text) and no lone surrogate (no UTF-8 encoding exists for one); ValueError otherwise."""
    found = _UNSTORABLE.search(value)
    if found:
        kind = "a NUL character" if found.group() == "\x00" else "a lone surrogate"
        raise ValueError(f"expected text without NUL characters or lone surrogates, got {kind} at {found.start()}")
    return value


Text = Annotated[str, StringConstraints(max_length=200), AfterValidator(storable_text)]
"""A name, key or label value: at most 200 characters, storable on every backend."""
LongText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(storable_text)]
"""A comment or message: at most 2,000 characters, storable on every backend."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ServiceName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NAME_PATTERN)]
"""A service's name, in mlwatch.yaml, at registration and in paths: letters, digits, ``_.-``."""

MAX_DEPTH = 32
"""How deeply free-form values (alert rule options, request bodies) may nest."""


def check_depth(value: Any, limit: int = MAX_DEPTH) -> Any:
    """``value`` if its lists and mappings nest at most ``limit`` deep; ValueError otherwise.

    Iterative, so that a value nested thousands deep is refused rather than overflowing the stack.
    """
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list | tuple) else None
        if children is None:
            continue
        if depth > limit:
            raise ValueError(f"expected values nested at most {limit} levels deep")
        pending.extend((child, depth + 1) for child in children)
    return value


DRIFT_METHODS: dict[str, frozenset[str]] = {
    name: frozenset(kinds)
    for name, kinds in {
        "TVD": ("categorical",),
        "abs_text_content_drift": ("text",),
        "anderson": ("numerical",),
        "chisquare": ("categorical",),
        "cramer_von_mises": ("numerical",),
        "ed": ("numerical",),
        "empirical_mmd": ("numerical",),
        "es": ("numerical",),
        "fisher_exact": ("categorical",),
        "g_test": ("categorical",),
        "hellinger": ("categorical", "numerical"),
        "jensenshannon": ("categorical", "numerical"),
        "kl_div": ("categorical", "numerical"),
        "ks": ("numerical",),
        "mannw": ("numerical",),
        "perc_text_content_drift": ("text",),
        "psi": ("categorical", "numerical"),
        "t_test": ("numerical",),
        "wasserstein": ("numerical",),
        "z": ("categorical",),
    }.items()
}
"""Evidently's stattests and the feature types each takes (``drift_method``'s values). Kept
here so that loading a config does not import Evidently (6 s); ``tests/test_config.py``
checks it against Evidently's registry."""


def check_drift_method(method: str | None, kind: str) -> str | None:
    """``method`` if Evidently has a stattest of that name for ``kind`` features; else ValueError listing those."""
    if method is None or kind in DRIFT_METHODS.get(method, ()):
        return method
    valid = ", ".join(sorted(m for m, kinds in DRIFT_METHODS.items() if kind in kinds))
    raise ValueError(f"drift_method: expected a stattest for {kind} features, one of {valid}; got {_shown(method)}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)


FeatureType = Literal["numerical", "categorical", "text"]
Task = Literal["classification", "regression"]
Severity = Literal["info", "warning", "critical"]
WebhookFormat = Literal["json", "slack", "alertmanager", "pagerduty", "msteams"]
"""The body formats of ``monitor.webhooks.formats.FORMATS`` (a test keeps the two equal)."""


class FeatureSpec(_Frozen):
    """One model input: its name and how drift and quality treat it (the API's ``FeatureIn`` too)."""

    name: Annotated[Text, StringConstraints(min_length=1)]
    type: FeatureType = "numerical"
    drift_method: Annotated[str, StringConstraints(max_length=100)] | None = None
    drift_threshold: float | None = Field(default=None, gt=0, le=1e6)

    @model_validator(mode="after")
    def _method_of_type(self) -> FeatureSpec:
        check_drift_method(self.drift_method, self.type)
        return self


class ServiceConfig(_Frozen):
    """A monitored model service."""

    name: ServiceName
    task: Task = "classification"
    model_name: Text | None = None
    target: Text | None = None
    window: PositiveDuration = 3600.0
    reference: str | None = None
    features: tuple[FeatureSpec, ...] = ()
    latency_bound_ms: float | None = Field(default=None, gt=0)
    sample_size: int = Field(default=20_000, ge=100, le=1_000_000)


class WebhookConfig(_Frozen):
    """A webhook receiver and what it is sent."""

    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    format: WebhookFormat = "json"
    secret_env: str | None = None
    routing_key_env: str | None = None
    """``pagerduty`` only, and required there: the variable holding the 32-character Integration Key."""
    min_severity: Severity = "info"
    match_labels: dict[str, str] = Field(default_factory=dict)
    events: tuple[str, ...] = ()
    timeout: PositiveDuration = 5.0
    retry_horizon: PositiveDuration = 24 * 3600.0
    backoff_initial: PositiveDuration = 2.0
    backoff_max: PositiveDuration = 600.0

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

    @model_validator(mode="after")
    def _routing_key_of_format(self) -> WebhookConfig:
        if self.format == "pagerduty" and not self.routing_key_env:
            raise ValueError(
                "format pagerduty needs routing_key_env: the name of the environment variable that holds "
                "the service's 32-character Integration Key (Events API v2)"
            )
        if self.format != "pagerduty" and self.routing_key_env:
            raise ValueError(f"routing_key_env is only used by format pagerduty, not {self.format}; remove it")
        return self


class AlertRuleConfig(_Frozen):
    """An alert rule; ``kind`` picks what it watches."""

    name: Annotated[Text, StringConstraints(min_length=1)]
    kind: Annotated[str, StringConstraints(max_length=100)]
    service: Text | None = None
    host: Text | None = None
    model_version: Text | None = None
    feature: Text | None = None
    metric: Text | None = None
    threshold: float = Field(default=0.0, ge=-1e15, le=1e15)
    for_: Duration = Field(default=0.0, alias="for")
    severity: Severity = "warning"
    labels: dict[Text, Text] = Field(default_factory=dict, max_length=50)
    repeat_interval: PositiveDuration = 4 * 3600.0
    options: Annotated[dict[Text, Any], AfterValidator(check_depth)] = Field(default_factory=dict, max_length=50)

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
    data_window: PositiveDuration = 7 * 86400.0
    max_production_rows: int = Field(default=200_000, ge=0)
    recency_half_life: Duration | None = None
    reference_weight: float = Field(default=1.0, ge=0.0)
    """Sample weight of reference rows in training (production rows weigh 1, or less with age);
    lower it when the concept has changed, 0 trains on production data alone."""
    cooldown: Duration = 3600.0
    daily_cap: int = Field(default=3, ge=0)
    timeout: PositiveDuration = 3600.0


class RetentionConfig(_Frozen):
    """How long raw rows are kept before the worker deletes them."""

    predictions: PositiveDuration = 30 * 86400.0
    host_samples: PositiveDuration = 7 * 86400.0
    traffic_rollups: PositiveDuration = 400 * 86400.0


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
    dashboard_secret: str | None = None  # signs dashboard session cookies; the same on every replica
    check_interval: PositiveDuration = 60.0
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
