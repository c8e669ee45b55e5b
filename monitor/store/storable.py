"""What every backend can keep, checked before a driver or encoder fails on it.

Each refusal is a ``ValidationFailed`` naming the field, instead of the 500 that the
driver's own error became (issue 14):

- text with a NUL character: PostgreSQL refuses it in any text column or parameter
  (psycopg: "PostgreSQL text fields cannot contain NUL (0x00) bytes"); refused on SQLite
  too, so that a store behaves the same on both;
- text with a lone surrogate, which is not Unicode and cannot be encoded;
- text longer than its ``VARCHAR`` column (PostgreSQL refuses it, SQLite would keep it);
- integers beyond 64 bits in JSON columns: orjson refuses them;
- times outside years 1 to 9999: ``minute`` (``ts // 60``, a BIGINT) overflows past
  about 5.5e20 seconds, and no date can show them anyway.

The checks that run on every ingested row are C-level scans over whole columns (see
``monitor.store.ingest``); the walk that names the offending field runs only once a scan
found something.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from monitor.errors import ValidationFailed

TIME_MIN, TIME_MAX = -62135596800.0, 253402300799.0
"""Epoch seconds of 0001-01-01 and 9999-12-31T23:59:59 UTC (the API's bounds too)."""
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
"""The integers orjson encodes (signed or unsigned 64-bit)."""
MAX_DEPTH = 255
"""orjson's nesting limit."""
ESCAPED_NUL = "\\u0000"
"""How orjson writes a NUL character inside JSON text."""
_OPTIONS = orjson.OPT_NON_STR_KEYS


def check_time(field: str, value: float) -> float:
    """``value`` when it is a finite time between years 1 and 9999; ValidationFailed otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool) and TIME_MIN <= value <= TIME_MAX:
        return float(value)
    raise ValidationFailed(
        field, f"expected epoch seconds between {TIME_MIN:.0f} (year 1) and {TIME_MAX:.0f} (year 9999), got {value!r}"
    )


def check_text(field: str, value: str | None, limit: int | None = None) -> str | None:
    """``value`` when every backend can store it (in a column of ``limit`` characters); None stays None."""
    if value is None:
        return None
    problem = text_problem(value, limit)
    if problem:
        raise ValidationFailed(field, problem)
    return value


def text_problem(value: object, limit: int | None = None) -> str | None:
    """Why ``value`` is not storable text, or None."""
    if not isinstance(value, str):
        return f"expected text, got {type(value).__name__}"
    if "\x00" in value:
        return "contains a NUL character (\\x00), which PostgreSQL cannot store; remove it"
    if limit is not None and len(value) > limit:
        return f"expected at most {limit} characters, got {len(value)}"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return "contains a lone surrogate, which is not valid Unicode text"
    return None


def storable_message(text: str | None) -> str | None:
    """A message or log line as every backend can keep it: NUL and lone surrogates written as escapes.

    For text mlwatch writes about something (an error, a job's log), where refusing would lose it.
    """
    if text is None or (text.isascii() and "\x00" not in text):
        return text
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


def json_text(field: str, value: Any) -> str:
    """``value`` as JSON text that every backend can store; ValidationFailed names the part that cannot be."""
    try:
        text = orjson.dumps(value, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        raise _refused(field, value) from None
    if ESCAPED_NUL in text:  # also found in the text "\u0000" written out, which is harmless
        found = json_problem(field, value)
        if found:
            raise ValidationFailed(*found)
    return text


def json_problem(field: str, value: Any) -> tuple[str, str] | None:
    """The first place in ``value`` (as ``field.key[i]``) that JSON or a backend cannot keep, and why.

    Walks with a stack of its own, so a deeply nested value is reported, not a RecursionError.
    """
    stack: list[tuple[str, Any, int]] = [(field, value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path, f"expected at most {MAX_DEPTH} levels of nesting"
        if isinstance(item, dict):
            for key, inner in item.items():
                key_problem = _scalar_problem(key)
                if key_problem:
                    return f"{path}.{_name(key)}", f"this key {key_problem}"
                stack.append((f"{path}.{_name(key)}", inner, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", inner, depth + 1) for i, inner in enumerate(item))
        else:
            problem = _scalar_problem(item)
            if problem:
                return path, problem
    return None


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool | float):
        return None
    if isinstance(value, int):
        if INT_MIN <= value <= INT_MAX:
            return None
        return f"expected an integer within 64 bits ({INT_MIN} to {INT_MAX}), got one of {_digits(value)} digits"
    if isinstance(value, str):
        return text_problem(value)
    return f"expected a number, text, boolean, null, list or object, got {type(value).__name__}"


def _refused(field: str, value: Any) -> ValidationFailed:
    found = json_problem(field, value)
    return ValidationFailed(*(found or (field, "expected a value that JSON can hold")))


def _digits(value: int) -> int:
    # str() of a huge integer is quadratic (and refused past 4300 digits); the log is not
    return int(math.log10(abs(value))) + 1


def _name(key: object, limit: int = 40) -> str:
    """A key as a field name: itself when short and printable, else its (escaped, shortened) repr."""
    if isinstance(key, str) and key.isprintable() and len(key) <= limit:
        return key
    text = repr(key)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
