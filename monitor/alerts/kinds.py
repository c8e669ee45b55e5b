"""The registry of rule kinds, keyed by the stable ``kind`` string that rules store.

To add a kind: write a class with ``name``, ``description``, ``check(rule)`` and
``evaluate(rule, source, now)`` (see ``observations.RuleKind``) and add it to ``KINDS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.alerts.drift import DriftShare, FeatureDrift, PredictionDrift, QualityDecay
from monitor.alerts.observations import RuleKind
from monitor.alerts.resources import Resource
from monitor.alerts.traffic import ErrorRate, Latency, NoData

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
"""Every rule kind by its name."""

SERVICE_KINDS = frozenset(KINDS) - {"resource"}


def check_kind_name(name: str) -> str:
    """Return ``name`` if it is a known kind; raise ValueError listing the valid ones otherwise."""
    if name not in KINDS:
        raise ValueError(f"unknown kind {name!r}; expected one of {', '.join(KINDS)}")
    return name


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
