"""Bad grouping and inhibition settings are refused at load, naming the key; good ones load as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.frames import alerts_table
from monitor.alerts.inhibition import Inhibitor
from monitor.config import InhibitRuleConfig, Settings
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.store.alerts import AlertRecord

RULE = "alerts:\n  - {name: d, kind: drift_share, service: credit, labels: {team: risk}}\n"


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "mlwatch.yaml"
    path.write_text(RULE + text)
    return load_settings(path, environ={})


def _hook(extra: str) -> str:
    return f"webhooks:\n  - {{name: ops, url: 'https://hooks.example.com/x', {extra}}}\n"


def test_grouping_and_inhibition_load_as_written(tmp_path: Path) -> None:
    text = _hook("group_by: [service, team], group_wait: 10s, group_interval: 2m, repeat_interval: 1h") + (
        "inhibit_rules:\n"
        "  - {source_match: {kind: no_data}, target_match: {kind: [drift_share, quality_decay]}, equal: [service]}\n"
    )
    settings = _load(tmp_path, text)
    (hook,) = settings.webhooks
    assert (hook.group_by, hook.group_wait, hook.group_interval, hook.repeat_interval) == (
        ("service", "team"), 10.0, 120.0, 3600.0,
    )  # fmt: skip
    (rule,) = settings.inhibit_rules
    assert rule.target_match == {"kind": ("drift_share", "quality_decay")} and rule.equal == ("service",)


def test_a_receiver_without_group_by_is_not_grouped(tmp_path: Path) -> None:
    (hook,) = _load(tmp_path, _hook("format: json")).webhooks
    assert hook.group_by == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_hook("group_by: [servcie]"), r"webhooks\[0\]\.group_by: unknown label 'servcie'; alerts carry rule, kind"),
        (_hook("group_by: [service, service]"), r"webhooks\.0: .*group_by: a label is listed twice"),
        (_hook("group_by: [service], group_wait: -5m"), r"webhooks\.0\.group_wait: .*expected a duration"),
        (_hook("group_by: [service], group_interval: soon"), r"webhooks\.0\.group_interval: .*expected a duration"),
        (_hook("group_by: [service], repeat_interval: 0s"), r"webhooks\.0\.repeat_interval: .*positive duration"),
        (_hook("group_wait: 10s"), r"webhooks\.0: .*group_wait is only used with group_by"),
        (
            "inhibit_rules:\n  - {source_match: {knd: no_data}, target_match: {kind: drift_share}}\n",
            r"inhibit_rules\[0\]\.source_match: unknown label 'knd'",
        ),
        (
            "inhibit_rules:\n  - {source_match: {kind: no_data}, target_match: {kind: [drift_share, drfit]}}\n",
            r"inhibit_rules\[0\]\.target_match\.kind: unknown kind 'drfit'; expected one of drift_share",
        ),
        (
            "inhibit_rules:\n  - {source_match: {severity: urgent}, target_match: {kind: drift_share}}\n",
            r"inhibit_rules\[0\]\.source_match\.severity: unknown severity 'urgent'",
        ),
        (
            "inhibit_rules:\n  - {source_match: {kind: no_data}, target_match: {kind: drift_share}, equal: [svc]}\n",
            r"inhibit_rules\[0\]\.equal: unknown label 'svc'",
        ),
        (
            "inhibit_rules:\n  - {source_match: {}, target_match: {kind: drift_share}}\n",
            r"inhibit_rules\.0\.source_match",
        ),
        (
            "inhibit_rules:\n  - {target_match: {kind: drift_share}}\n",
            r"inhibit_rules\.0\.source_match: Field required",
        ),
        (
            "inhibit_rules:\n  - {source_match: {kind: no_data}, target_match: {kind: drift_share}, equals: [x]}\n",
            r"inhibit_rules\.0\.equals: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_grouping_or_inhibition_is_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text)


def test_the_alert_table_shows_which_alert_inhibits_one() -> None:
    muted = AlertRecord(
        3, "fp", "credit-f00", "feature_drift", "credit", "firing", "warning", {}, 0.3, None, "s", 1.0, 1.0,
        None, None, None, None, inhibited_by=12,
    )  # fmt: skip
    table = alerts_table([muted])
    assert table.iloc[0]["inhibited"] == "inhibited by #12"


def test_inhibition_mutes_only_targets_that_agree_on_the_equal_labels() -> None:
    rule = InhibitRuleConfig.model_validate(
        {"source_match": {"kind": "no_data"}, "target_match": {"kind": ["feature_drift"]}, "equal": ["service"]}
    )
    muted = Inhibitor([rule])
    sources = [(12, {"kind": "no_data", "service": "credit"})]
    assert muted.is_source(sources[0][1]) and not muted.is_source({"kind": "feature_drift"})
    assert muted.inhibitor({"kind": "feature_drift", "service": "credit"}, sources) == 12
    assert muted.inhibitor({"kind": "feature_drift", "service": "fraud"}, sources) is None
    assert muted.inhibitor({"kind": "latency", "service": "credit"}, sources) is None
