"""The names that settings share with the code that acts on them: rule kinds, severities, event types.

``monitor.config`` checks a rule's ``kind`` and a receiver's ``events`` against these tables;
the alert kinds (``monitor.alerts.kinds``) and the webhooks (``monitor.webhooks.events``) use
the same ones. They import the configuration, so it cannot import them (standard library only).
"""

from __future__ import annotations

RULE_KINDS = (
    "drift_share",
    "feature_drift",
    "prediction_drift",
    "quality_decay",
    "latency",
    "error_rate",
    "resource",
    "no_data",
)
"""The ``kind`` of every alert rule, in the order ``monitor.alerts.kinds.KINDS`` lists them."""
SERVICE_KINDS = frozenset(RULE_KINDS) - {"resource"}
"""Kinds that watch services (``resource`` watches hosts)."""
SEVERITIES = ("info", "warning", "critical")
"""Severities from least to most urgent."""
EVENT_TYPES = (
    "alert.firing",
    "alert.resolved",
    "alert.reminder",
    "alert.acknowledged",
    "test",
    "retrain.started",
    "retrain.finished",
    "retrain.failed",
    "model.promoted",
    "model.rolled_back",
    "model.alias_changed_externally",
    "model.shadow_started",
    "model.shadow_ended",
    "model.canary_started",
    "model.canary_ended",
    "model.canary_rolled_back",
)
"""Every event type mlwatch sends; receivers may subscribe to them or to ``prefix.*``."""


def check_kind_name(name: str) -> str:
    """Return ``name`` if it is a known kind; raise ValueError listing the valid ones otherwise."""
    if name not in RULE_KINDS:
        raise ValueError(f"unknown kind {name!r}; expected one of {', '.join(RULE_KINDS)}")
    return name


def check_event_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """Return ``patterns`` if each is a known event type or ``prefix.*``; raise ValueError otherwise."""
    prefixes = {t.split(".")[0] for t in EVENT_TYPES}
    for pattern in patterns:
        known = pattern in EVENT_TYPES or (pattern.endswith(".*") and pattern[:-2] in prefixes) or pattern == "*"
        if not known:
            raise ValueError(
                f"unknown event type {pattern!r}; expected one of {', '.join(EVENT_TYPES)} "
                "or a prefix such as 'alert.*'"
            )
    return patterns
