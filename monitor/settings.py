"""Loading the settings: ``mlwatch.yaml`` overridden by ``MLWATCH_<KEY>`` environment variables.

``monitor.config``'s models validate each key; then the alert kinds and the webhooks check
what only they know (a rule's fields against its kind, receivers against the address policy),
here rather than in the models, since those packages import the models.

    >>> settings = load_settings()            # ./mlwatch.yaml, $MLWATCH_CONFIG, or defaults
    >>> settings.store_url
    'sqlite:///.mlwatch/mlwatch.db'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.config import Settings, describe_problems
from monitor.errors import ConfigError

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
    check_settings(settings, env)
    return settings


def check_settings(settings: Settings, env: Mapping[str, str]) -> None:
    """Raise ConfigError naming the key where ``settings`` asks what the alert kinds or webhooks refuse:
    a rule's fields its kind does not take, a receiver URL ``allow_private_webhooks`` forbids, a
    missing secret, a label no alert carries."""
    # here, not at the top: the webhooks bring the store along, and the CLI starts without it
    from monitor.alerts.kinds import check_rule
    from monitor.alerts.labels import check_alert_labels
    from monitor.webhooks.receivers import check_receivers

    for i, rule in enumerate(settings.alerts):
        try:
            check_rule(rule)
        except ValueError as exc:
            raise ConfigError(f"invalid configuration: alerts.{i}: {exc}") from exc
    check_receivers(settings, env)
    check_alert_labels(settings)


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
    return "invalid configuration: " + describe_problems(exc)
