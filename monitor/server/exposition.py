"""The Prometheus text exposition format (version 0.0.4): family headers and sample lines.

Numbers are written the way Prometheus's own clients write them: integers as integers,
floats as the shortest text that reads back to the same float, infinities as ``+Inf`` and
``-Inf``. Histogram bounds are computed (``0.1 * 2 ** (k / 3)`` ms), so they carry float
noise, and an ``le`` label is a series identity that dashboards and alert rules type by
hand: :func:`bound` writes the decimal the bound stands for (``0.0004``, not
``0.00040000000000000013``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BOUND_DIGITS = 12  # float noise of the computed bounds sits near the 16th digit


def header(name: str, kind: str, help_: str) -> str:
    """The ``# HELP`` and ``# TYPE`` lines of metric family ``name``."""
    text = help_.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n"


def sample(name: str, labels: Mapping[str, str], value: float) -> str:
    """One sample line: ``name{k="v",...} value``."""
    inner = ",".join(f'{key}="{escape(text)}"' for key, text in labels.items())
    return f"{name}{{{inner}}} {number(value)}\n"


def escape(value: str) -> str:
    """A label value with backslash, newline and double quote escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value: float) -> str:
    """A sample value: exact for integers, shortest round-trip text for floats."""
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return "NaN" if math.isnan(value) else repr(float(value))


def bound(value: float) -> str:
    """A histogram ``le`` label: ``value`` rounded to 12 significant digits, written shortest."""
    if math.isinf(value):
        return number(value)
    return repr(float(f"{value:.{_BOUND_DIGITS}g}"))
