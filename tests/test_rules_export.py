"""``mlwatch rules export``: a rules file the real ``promtool`` checks, whose rules fire on mlwatch's series.

Without Debian's ``prometheus`` package (promtool) the promtool tests skip, or fail when
``MLWATCH_REQUIRE_PROMETHEUS=1`` (CI).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from monitor.alerts.kinds import KINDS
from monitor.alerts.prometheus import TRANSLATORS, duration, export_rules
from monitor.cli import main
from monitor.config import AlertRuleConfig
from tests.test_prometheus import tool

CONFIG = """\
alerts:
  - {name: dataset-drift, kind: drift_share, service: credit, threshold: 0.3, for: 10m, options: {min_rows: 100}}
  - name: income-drift
    kind: feature_drift
    service: credit
    feature: 'in"come {{x'
    labels: {team: ml, odd-key: 'a {{ b'}
  - {name: slow, kind: latency, service: credit, metric: p99, threshold: 250, options: {window: 10m, min_count: 20}}
  - {name: errors, kind: error_rate, threshold: 0.05}
  - {name: silent, kind: no_data, service: credit, threshold: 30, for: 1m, severity: critical}
  - {name: decay, kind: quality_decay, service: credit, threshold: 0.05}
  - {name: gpu-hot, kind: resource, metric: utilization_percent, threshold: 95}
  - {name: v3-drift, kind: drift_share, model_version: "3", threshold: 0.5}
  - {name: eu-drift, kind: drift_share, service: credit, threshold: 0.5, options: {segment: {region: eu}}}
"""
EXPORTED = ["dataset-drift", "income-drift", "slow", "errors", "silent"]

UNIT_TEST = """\
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'mlwatch_drift_share{{service="credit"}}'
        values: '0.1x4 0.5x30'
      - series: 'mlwatch_check_rows{{service="credit"}}'
        values: '500x34'
      - series: 'mlwatch_requests_total{{service="credit",model_version="1"}}'
        values: '0+10x20 200x40'
      - series: 'mlwatch_request_errors_total{{service="credit",model_version="1"}}'
        values: '0+0x20 0x40'
    alert_rule_test:
      - {{eval_time: 12m, alertname: dataset-drift, exp_alerts: []}}
      - eval_time: 20m
        alertname: dataset-drift
        exp_alerts:
          - exp_labels: {{service: credit, rule: dataset-drift, kind: drift_share, severity: warning}}
            exp_annotations:
              summary: 'credit: 50% of features drifted (threshold 30%)'
              description: 'mlwatch rule dataset-drift (drift_share)'
      - {{eval_time: 40m, alertname: silent, exp_alerts: []}}
      - eval_time: 55m
        alertname: silent
        exp_alerts:
          - exp_labels: {{service: credit, rule: silent, kind: no_data, severity: critical}}
            exp_annotations:
              summary: 'credit: no prediction received for 30m'
              description: 'mlwatch rule silent (no_data)'
      - {{eval_time: 15m, alertname: errors, exp_alerts: []}}
"""


def _export(tmp_path: Path, *extra: str) -> Result:
    config = tmp_path / "mlwatch.yaml"
    config.write_text(CONFIG)
    return CliRunner().invoke(main, ["rules", "export", "--config", str(config), *extra], prog_name="mlwatch")


def test_export_writes_the_expressible_rules_and_names_the_others_with_why(tmp_path: Path) -> None:
    result = _export(tmp_path, "-o", str(tmp_path / "rules.yml"))
    assert result.exit_code == 0, result.output
    document = yaml.safe_load((tmp_path / "rules.yml").read_text())
    assert [r["alert"] for r in document["groups"][0]["rules"]] == EXPORTED
    assert result.stderr.splitlines() == [
        "skipped decay (quality_decay): kind quality_decay compares quality with the reference, "
        "and /metrics exports only the quality itself",
        "skipped gpu-hot (resource): kind resource watches agent samples (host, process, GPU), "
        "which /metrics does not export",
        "skipped v3-drift (drift_share): model_version: the check gauges carry no model_version label",
        "skipped eu-drift (drift_share): options.segment: the check gauges carry no segment label",
        f"wrote 5 of 9 alert rules to {tmp_path / 'rules.yml'} (group mlwatch)",
    ]


def test_export_to_stdout_is_the_yaml_alone(tmp_path: Path) -> None:
    result = _export(tmp_path)
    assert result.exit_code == 0
    document = yaml.safe_load(result.stdout)
    rule = document["groups"][0]["rules"][0]
    assert rule == {
        "alert": "dataset-drift",
        "expr": 'mlwatch_drift_share{service="credit"} > 0.3 '
        'and on (service) mlwatch_check_rows{service="credit"} >= 100',
        "for": "10m",
        "labels": {"rule": "dataset-drift", "kind": "drift_share", "severity": "warning"},
        "annotations": {
            "summary": "{{ $labels.service }}: {{ $value | humanizePercentage }} of features drifted (threshold 30%)",
            "description": "mlwatch rule dataset-drift (drift_share)",
        },
    }


def test_exported_file_passes_promtool_check_rules(tmp_path: Path) -> None:
    promtool = tool("promtool")
    assert _export(tmp_path, "-o", str(tmp_path / "rules.yml")).exit_code == 0
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout


def test_exported_rules_fire_on_synthetic_mlwatch_series(tmp_path: Path) -> None:
    promtool = tool("promtool")
    assert _export(tmp_path, "-o", str(tmp_path / "rules.yml")).exit_code == 0
    (tmp_path / "rules_test.yml").write_text(UNIT_TEST.format(rules="rules.yml"))
    tested = subprocess.run([promtool, "test", "rules", "rules_test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_a_template_or_quote_in_names_and_labels_stays_as_typed(tmp_path: Path) -> None:
    (rule,) = export_rules(
        [
            AlertRuleConfig.model_validate(
                {"name": "x", "kind": "feature_drift", "feature": 'a"b {{c', "labels": {"k-1": "{{v"}}
            )
        ]
    )[0]["groups"][0]["rules"]
    assert rule["expr"] == 'mlwatch_feature_drifted{feature="a\\"b {{c"} == 1'
    assert rule["labels"]["k_1"] == '{{ "{{" }}v'  # Prometheus prints it as "{{v"


def test_every_rule_kind_has_a_translation() -> None:
    assert set(TRANSLATORS) == set(KINDS)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (90, "1m30s"), (3600, "1h"), (5400, "1h30m"), (0.5, "500ms")])
def test_durations_are_written_as_prometheus_reads_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_a_bad_config_is_refused_with_its_message(tmp_path: Path) -> None:
    config = tmp_path / "mlwatch.yaml"
    config.write_text("alerts:\n  - {name: x, kind: drift_shares}\n")
    result = CliRunner().invoke(main, ["rules", "export", "--config", str(config)])
    assert result.exit_code == 1
    assert "alerts.0.kind: Value error, unknown kind 'drift_shares'" in result.stderr
