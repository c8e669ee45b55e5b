"""Data quality of a window against the reference's cached statistics.

- missing share: missing cells over all expected feature cells of the sampled rows;
- new categories: categorical values the reference never had (up to ``MAX_LISTED`` each);
- out-of-range share: numerical values below the reference minimum or above its maximum;
- type mismatches: values of the wrong kind (text in a numerical feature, numbers in a text one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from monitor.check_summary import DataQuality
from monitor.drift.reference import value_keys

MAX_LISTED = 20


def data_quality(features: pd.DataFrame, types: dict[str, str], stats: dict[str, Any]) -> DataQuality:
    """What is wrong with the window's feature values, given the reference statistics."""
    columns: dict[str, dict[str, Any]] = stats.get("columns", {})
    new: dict[str, list[str]] = {}
    out_of_range: dict[str, float] = {}
    mismatches: dict[str, int] = {}
    for name, kind in types.items():
        values = features[name].dropna() if name in features.columns else pd.Series(dtype=object)
        wrong = _type_mismatches(values, kind)
        if wrong:
            mismatches[name] = wrong
        reference = columns.get(name, {})
        if kind == "numerical" and reference.get("min") is not None:
            out_of_range[name] = _out_of_range(values, reference["min"], reference["max"])
        elif kind == "categorical" and reference.get("values_complete"):
            unseen = _new_categories(values, reference["values"])
            if unseen:
                new[name] = unseen
    return DataQuality(_missing_share(features, list(types)), new, out_of_range, mismatches)


def _missing_share(features: pd.DataFrame, names: list[str]) -> float:
    if not names or features.empty:
        return 0.0
    present = features.reindex(columns=names)
    return float(present.isna().to_numpy().mean())


_CLEAN = {
    "numerical": {"floating", "integer", "mixed-integer-float", "decimal", "empty"},
    "categorical": {"string", "integer", "boolean", "empty"},
    "text": {"string", "empty"},
}


def _type_mismatches(values: pd.Series, kind: str) -> int:
    if values.empty or pd.api.types.infer_dtype(values, skipna=True) in _CLEAN[kind]:
        return 0  # the common case, decided without looking at each value in Python
    if kind == "numerical":
        return int((~values.map(_is_number)).sum())
    if kind == "text":
        return int((~values.map(lambda v: isinstance(v, str))).sum())
    return int(values.map(lambda v: isinstance(v, float) and not float(v).is_integer()).sum())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def _out_of_range(values: pd.Series, low: float, high: float) -> float:
    numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if numbers.size == 0:
        return 0.0
    return float(((numbers < low) | (numbers > high)).mean())


def _new_categories(values: pd.Series, known: list[str]) -> list[str]:
    seen = set(value_keys(values).unique())
    return sorted(seen - set(known))[:MAX_LISTED]
