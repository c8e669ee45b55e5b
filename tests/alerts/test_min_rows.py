"""Rules over checks can ignore windows too small to judge."""

from __future__ import annotations

import pytest

from monitor.alerts.drift import DriftShare
from monitor.alerts.sources import CheckView
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig


class OneCheck:
    """A metric source holding one check (the protocol's two methods the drift kinds use)."""

    def __init__(self, rows: int, share: float) -> None:
        summary = {"rows": rows, "drift_share": share, "drifted_features": ["a"]}
        self.check = CheckView(
            model_version="1", created_at=0.0, status="ok", summary=CheckSummary.decode(summary), id=1
        )

    def services(self) -> list[str]:
        return ["svc"]

    def latest_check(self, service: str) -> CheckView:
        return self.check


@pytest.mark.parametrize(("rows", "judged"), [(160, False), (500, True)])
def test_checks_under_min_rows_are_not_judged(rows: int, judged: bool) -> None:
    rule = AlertRuleConfig(name="d", kind="drift_share", service="svc", threshold=0.3, options={"min_rows": 500})
    DriftShare().check(rule)
    observations = DriftShare().evaluate(rule, OneCheck(rows, 0.4), now=0.0)  # type: ignore[arg-type]
    assert [o.breached for o in observations] == ([True] if judged else [])
