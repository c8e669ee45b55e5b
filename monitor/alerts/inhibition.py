"""Inhibition: while a source alert fires, the target alerts it mutes are not notified.

    >>> muted = Inhibitor(settings.inhibit_rules)
    >>> no_data = (12, {"kind": "no_data", "service": "credit"})
    >>> muted.inhibitor({"kind": "feature_drift", "service": "credit"}, [no_data])
    12

Rules are configured like Alertmanager's ``inhibit_rules`` (``source_match``, ``target_match``,
``equal``; see ``monitor.config.InhibitRuleConfig``). An inhibited alert still fires and is
stored with ``inhibited_by`` (the id of the source), so the API and the dashboard show it;
it is treated as silenced: nothing is sent for it. When its source resolves, a target that
still fires is notified as if a silence had ended (one ``alert.firing``).

Decision: an alert that matches a source matcher is evaluated first and is never inhibited
itself, so two rules cannot mute each other and a tick needs one pass per side, not a fixpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitor.alerts.labels import matches

if TYPE_CHECKING:
    from monitor.config import InhibitRuleConfig

Source = tuple[int, dict[str, str]]
"""A firing source alert: its id and labels."""


class Inhibitor:
    """Decides which alerts are sources and which firing source, if any, mutes an alert."""

    def __init__(self, rules: Sequence[InhibitRuleConfig]) -> None:
        self.rules = tuple(rules)

    def is_source(self, labels: dict[str, str]) -> bool:
        """True when ``labels`` match the source side of a rule (such alerts are evaluated first)."""
        return any(matches(rule.source_match, labels) for rule in self.rules)

    def inhibitor(self, labels: dict[str, str], sources: Sequence[Source]) -> int | None:
        """The id of the first firing source that mutes an alert with ``labels``, or None."""
        for rule in self.rules:
            if not matches(rule.target_match, labels):
                continue
            for source_id, source in sources:
                same = all(source.get(k) == labels.get(k) for k in rule.equal)
                if same and matches(rule.source_match, source):
                    return source_id
        return None
