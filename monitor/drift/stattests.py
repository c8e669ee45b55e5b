"""Evidently's stattests, one column at a time, with its default test selection.

This is the only module (with ``report``) that imports Evidently. The column is cleaned
and the test chosen exactly as Evidently's ``DataDriftPreset`` does (``get_one_column_drift``:
infinities and missing values dropped, then ``get_stattest`` on reference and current), so
verdicts agree with the preset; but each column is tested once, on a bounded sample,
and nothing is rendered.

Text columns use Evidently's text-content drift (a domain classifier on the words); its
cost grows with rows, so both sides are capped at ``TEXT_ROWS`` rows, drawn at random
with a fixed seed. The choice between its absolute and percentile variants still follows
the full reference size, as in the preset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from evidently.legacy.calculations import stattests as _registered  # noqa: F401  (registers every test)
from evidently.legacy.calculations.stattests.registry import (
    StatTest,
    StatTestInvalidFeatureTypeError,
    StatTestNotFoundError,
    _registered_stat_tests,
    get_stattest,
)
from evidently.legacy.core import ColumnType

from monitor.drift.reference import value_keys
from monitor.drift.summary import ColumnDrift
from monitor.errors import ValidationFailed

TEXT_ROWS = 2_000
_TYPES = {"numerical": ColumnType.Numerical, "categorical": ColumnType.Categorical, "text": ColumnType.Text}


@dataclass(frozen=True)
class DriftSpec:
    """How one column is tested: its type and the optional method/threshold overrides."""

    name: str
    type: str
    method: str | None = None
    threshold: float | None = None


def method_names() -> list[str]:
    """Every stattest name Evidently knows (what ``drift_method`` may be set to)."""
    return sorted(_registered_stat_tests)


def prepare(values: pd.Series, kind: str) -> pd.Series:
    """A column as Evidently tests it: numbers for numerical, comparable keys for categories, no gaps."""
    if kind == "numerical":
        values = pd.to_numeric(values, errors="coerce").astype(float)
        return values.replace([np.inf, -np.inf], np.nan).dropna()
    values = values.dropna()
    return value_keys(values) if kind == "categorical" else values.astype(str)


def prepare_reference(values: pd.Series, kind: str) -> pd.Series:
    """``prepare`` for a reference column, made cheap to test again and again: numbers sorted
    once (every two-sample test ignores row order; the sorts inside Wasserstein and KS are
    then nearly free), categories as a pandas categorical (counted by their codes)."""
    prepared = prepare(values, kind)
    if kind == "categorical":
        return prepared.astype("category")  # counted by codes at each check, not by hashing strings
    return prepared.sort_values(ignore_index=True) if kind == "numerical" else prepared


def column_drift(
    spec: DriftSpec, reference: pd.Series, current: pd.Series, test: StatTest | None = None
) -> ColumnDrift | None:
    """Test one prepared column (see ``prepare``) with ``test``, else the one Evidently picks.

    None when either side has no values.
    """
    if reference.empty or current.empty:
        return None
    column_type = _TYPES[spec.type]
    test = test or choose(spec, reference, current)
    if spec.type == "text":
        reference, current = _capped(reference), _capped(current)
    result = test(reference, current, column_type, spec.threshold)
    return ColumnDrift(
        name=spec.name,
        type=spec.type,
        method=test.name,
        score=float(result.drift_score),
        threshold=float(result.actual_threshold),
        drifted=bool(result.drifted),
        reference_mean=_mean(reference, spec.type),
        current_mean=_mean(current, spec.type),
        reference_rows=len(reference),
        current_rows=len(current),
    )


def choose(spec: DriftSpec, reference: pd.Series, current: pd.Series) -> StatTest:
    """The stattest Evidently's preset would run on this column (``get_stattest``), or the override."""
    try:
        return get_stattest(reference, current, _TYPES[spec.type], spec.method)
    except (StatTestNotFoundError, StatTestInvalidFeatureTypeError) as exc:
        raise ValidationFailed(
            f"features.{spec.name}.drift_method",
            f"{spec.method!r} is not a stattest for {spec.type} columns; expected one of {', '.join(method_names())}",
        ) from exc


def choice_is_fixed(spec: DriftSpec, reference: pd.Series) -> bool:
    """Whether ``choose`` gives the same test whatever the current data, so it can be kept.

    Evidently's default selection depends on the reference size and on the number of
    distinct values in reference and current together; that number is at least the
    reference's own, so once the reference alone is past the cut-offs (more than 5 values
    for numerical columns, more than 2 for categorical ones) the choice cannot change.
    ``reference`` is prepared by ``prepare_reference`` (numerical columns sorted).
    """
    if spec.method is not None or spec.type == "text":
        return True
    if spec.type == "numerical":
        values = reference.to_numpy()
        distinct = 1 + int(np.count_nonzero(np.diff(values))) if values.size else 0
        return distinct > 5
    return int(reference.nunique()) > 2


def _capped(values: pd.Series) -> pd.Series:
    if len(values) <= TEXT_ROWS:
        return values
    return values.sample(TEXT_ROWS, random_state=0)


def _mean(values: pd.Series, kind: str) -> float | None:
    if kind != "numerical":
        return None
    mean = float(values.mean())
    return mean if np.isfinite(mean) else None
