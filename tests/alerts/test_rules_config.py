"""Bad alert rules are refused at load, with a message naming the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.alerts.kinds import KINDS
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.vocabulary import RULE_KINDS


def _load(tmp_path: Path, rules: str) -> Settings:
    path = tmp_path / "mlwatch.yaml"
    path.write_text("alerts:\n" + rules)
    return load_settings(path, environ={})


def test_unknown_kind_is_refused_listing_the_valid_ones(tmp_path: Path) -> None:
    rules = (
        "  - {name: a, kind: drift_share}\n  - {name: b, kind: latency, threshold: 100}\n  - {name: c, kind: drfit}\n"
    )
    expected = ", ".join(KINDS)
    with pytest.raises(ConfigError, match=rf"alerts\.2\.kind: .*unknown kind 'drfit'; expected one of {expected}"):
        _load(tmp_path, rules)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{name: f, kind: feature_drift}", r"alerts\.0: .*feature: required for kind 'feature_drift'"),
        ("{name: r, kind: resource, threshold: 90}", r"alerts\.0: .*metric: required for kind 'resource'"),
        ("{name: l, kind: latency, threshold: 200, metric: p42}", r"metric: expected one of p95, p50, p99"),
        ("{name: l, kind: latency, threshold: 0}", r"threshold: expected a latency bound in milliseconds > 0"),
        ("{name: e, kind: error_rate, threshold: 5}", r"threshold: expected an error share between 0 and 1"),
        (
            "{name: q, kind: quality_decay, options: {mode: ratio}}",
            r"options\.mode: expected one of absolute, relative",
        ),
        ("{name: q, kind: quality_decay, options: {source: guessed}}", r"options\.source: expected one of realized"),
        ("{name: d, kind: drift_share, options: {windw: 5m}}", r"options\.windw: not an option of kind 'drift_share'"),
        ("{name: l, kind: latency, threshold: 9, options: {window: soon}}", r"options\.window: expected a duration"),
        ("{name: n, kind: no_data, threshold: 0}", r"threshold: expected minutes without data > 0"),
        ("{name: h, kind: drift_share, host: gpu-1}", r"host: kind 'drift_share' watches services"),
        ("{name: s, kind: drift_share, severity: loud}", r"alerts\.0\.severity: Input should be 'info', 'warning' or"),
        ("{name: w, kind: drift_share, for: forever}", r"alerts\.0\.for: .*expected a duration"),
    ],
)
def test_rule_fields_are_checked_against_their_kind(tmp_path: Path, rule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, f"  - {rule}\n")


def test_every_kind_loads_when_its_fields_are_right(tmp_path: Path) -> None:
    rules = (
        "  - {name: a, kind: drift_share, service: credit, threshold: 0.3, for: 10m}\n"
        "  - {name: b, kind: feature_drift, service: credit, feature: income}\n"
        "  - {name: c, kind: prediction_drift, service: credit}\n"
        "  - {name: d, kind: quality_decay, metric: f1, threshold: 0.05,"
        " options: {mode: relative, source: estimated}}\n"
        "  - {name: e, kind: latency, metric: p99, threshold: 250, options: {window: 10m}}\n"
        "  - {name: f, kind: error_rate, threshold: 0.02}\n"
        "  - {name: g, kind: resource, metric: memory_used_percent, threshold: 90, options: {sample_kind: gpu}}\n"
        "  - {name: h, kind: no_data, service: credit, threshold: 15, severity: critical}\n"
    )
    settings = _load(tmp_path, rules)
    assert [r.kind for r in settings.alerts] == list(KINDS)
    assert settings.alerts[0].for_ == 600.0


def test_the_configuration_knows_every_kind_by_the_name_the_registry_has() -> None:
    assert tuple(KINDS) == RULE_KINDS
