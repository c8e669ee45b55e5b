"""JSON text encoding of store columns (orjson: fast, and NaN-free by construction)."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Serialize ``value`` to compact JSON text."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(text: str | bytes | None) -> Any:
    """Parse JSON text; None stays None."""
    return None if text is None else orjson.loads(text)
