"""The registry of rule kinds, keyed by the stable ``kind`` string that rules store.

To add a kind: write a class with ``name``, ``description``, ``check(rule)`` and
``evaluate(rule, source, now)`` (see ``observations.RuleKind``), add it to ``KINDS`` and its
name to ``monitor.vocabulary.RULE_KINDS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.alerts.drift import DriftShare, FeatureDrift, PredictionDrift, QualityDecay
from monitor.alerts.observations import RuleKind
from monitor.alerts.resources import Resource
from monitor.alerts.traffic import ErrorRate, Latency, NoData
from monitor.vocabulary import SERVICE_KINDS, check_kind_name

if TYPE_CHECKING:
    from monitor.config import AlertRuleConfig

KINDS: dict[str, RuleKind] = {
    k.name: k
    for k in (
        DriftShare(),
        FeatureDrift(),
        PredictionDrift(),
        QualityDecay(),
        Latency(),
        ErrorRate(),
        Resource(),
        NoData(),
    )
}
"""Every rule kind by its name (``monitor.vocabulary.RULE_KINDS`` names them for the configuration)."""


def get_kind(name: str) -> RuleKind:
    """The kind called ``name`` (ValueError listing the valid ones if unknown)."""
    return KINDS[check_kind_name(name)]


def check_rule(rule: AlertRuleConfig) -> None:
    """Raise ValueError naming the field when ``rule`` does not fit its kind."""
    if rule.kind not in KINDS:
        return  # already reported on ``kind``
    if rule.host and rule.kind in SERVICE_KINDS:
        raise ValueError(f"host: kind {rule.kind!r} watches services; use kind 'resource' for host metrics")
    KINDS[rule.kind].check(rule)
