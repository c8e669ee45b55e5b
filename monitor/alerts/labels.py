"""Alert label names, and the matchers that grouping and inhibition use on them.

Every alert carries ``rule``, ``kind`` and ``severity``, the labels of its scope (``service``,
``feature``, ``metric``, ``host``, ``device``) and its rule's own ``labels``. ``group_by``,
``inhibit_rules`` matchers and ``equal`` may name those (``check_alert_labels``); a typo such
as ``servcie`` would otherwise group or inhibit nothing, silently. Labels of rules added later
through the API can be matched only if a configured rule declares them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from monitor.errors import ConfigError
from monitor.vocabulary import RULE_KINDS, SEVERITIES

if TYPE_CHECKING:
    from monitor.config import Matcher, Settings

BUILTIN_LABELS = ("rule", "kind", "severity", "service", "feature", "metric", "host", "device")
"""Labels mlwatch puts on alerts itself (``check_id`` too, but it differs per check, so it is not matched on)."""


def matches(matchers: Mapping[str, Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher's label has its value (or one of its list of values)."""
    for name, wanted in matchers.items():
        value = labels.get(name)
        if value != wanted if isinstance(wanted, str) else value not in wanted:
            return False
    return True


def known_labels(settings: Settings) -> tuple[str, ...]:
    """The label names alerts of ``settings`` can carry."""
    own = sorted({name for rule in settings.alerts for name in rule.labels} - set(BUILTIN_LABELS))
    return BUILTIN_LABELS + tuple(own)


def check_alert_labels(settings: Settings) -> None:
    """Raise ConfigError naming the key for a label no alert carries, or a kind or severity that does not exist."""
    known = known_labels(settings)
    for i, hook in enumerate(settings.webhooks):
        _check_names(f"webhooks[{i}].group_by", hook.group_by, known)
    for i, rule in enumerate(settings.inhibit_rules):
        for key in ("source_match", "target_match"):
            matchers = getattr(rule, key)
            _check_names(f"inhibit_rules[{i}].{key}", matchers, known)
            _check_values(f"inhibit_rules[{i}].{key}", matchers)
        _check_names(f"inhibit_rules[{i}].equal", rule.equal, known)


def _check_names(where: str, names: Iterable[str], known: tuple[str, ...]) -> None:
    for name in names:
        if name not in known:
            raise ConfigError(
                f"{where}: unknown label {name!r}; alerts carry {', '.join(known)} "
                "(a rule's own labels: count once a rule under alerts: declares them)"
            )


def _check_values(where: str, matchers: Mapping[str, Matcher]) -> None:
    allowed = {"kind": RULE_KINDS, "severity": SEVERITIES}
    for name, valid in allowed.items():
        wanted = matchers.get(name)
        for value in (wanted,) if isinstance(wanted, str) else wanted or ():
            if value not in valid:
                raise ConfigError(f"{where}.{name}: unknown {name} {value!r}; expected one of {', '.join(valid)}")
