"""What a rule kind reports for each scope it watches, and the protocol every kind follows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from monitor.alerts.sources import MetricSource
    from monitor.config import AlertRuleConfig


@dataclass(frozen=True, slots=True)
class Observation:
    """One scope of one rule at one tick: the value seen and whether it breaches the rule."""

    scope: dict[str, str]
    value: float | None
    breached: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


class RuleKind(Protocol):
    """A kind of rule: checks a rule's fields at load, and evaluates it against a metric source."""

    name: str
    description: str

    def check(self, rule: AlertRuleConfig) -> None:
        """Raise ValueError naming the field when ``rule`` lacks or misuses one."""

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per scope the rule covers now (none where there is nothing to judge)."""
        ...


def fingerprint(rule_name: str, scope: dict[str, str]) -> str:
    """A stable id of (rule, scope): the same alert across ticks and restarts."""
    text = rule_name + "\x00" + "\x00".join(f"{k}={v}" for k, v in sorted(scope.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def option_text(rule: AlertRuleConfig, key: str, allowed: tuple[str, ...]) -> str:
    """``rule.options[key]`` checked against ``allowed`` (the first is the default)."""
    value = rule.options.get(key, allowed[0])
    if value not in allowed:
        raise ValueError(f"options.{key}: expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def option_seconds(rule: AlertRuleConfig, key: str, default: float) -> float:
    """``rule.options[key]`` as a duration in seconds (``'5m'``, ``'1h'``, or a number)."""
    from monitor.config import parse_duration

    try:
        seconds = parse_duration(rule.options.get(key, default))
    except ValueError as exc:
        raise ValueError(f"options.{key}: {exc}") from exc
    if seconds <= 0:
        raise ValueError(f"options.{key}: expected a positive duration, got {rule.options.get(key)!r}")
    return seconds


def check_options(rule: AlertRuleConfig, allowed: tuple[str, ...]) -> None:
    """Refuse option keys a kind does not read (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(rule.options) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) or "none"
        raise ValueError(f"options.{unknown[0]}: not an option of kind {rule.kind!r} (its options: {expected})")
