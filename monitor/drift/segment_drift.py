"""Drift of each segment of a window, for every tested feature: many small tests, kept cheap.

Twenty segments by twenty features are 400 tests where the check itself runs 20; through
Evidently's stattest call each costs 2-3 ms on a thousand rows (pandas overhead, not
arithmetic), which alone cost more than the whole check. So each feature is prepared once
for the window and sliced per segment, and the two tests Evidently's default selection
picks past 1,000 reference rows are computed here on numpy arrays, by Evidently's own
formulas:

- ``wasserstein``: the first Wasserstein distance (SciPy's CDF form) over the reference's
  population standard deviation (at least 0.001); drift at or above the threshold;
- ``jensenshannon`` on categories: the Jensen-Shannon distance (natural log) of the category
  shares of both sides, over the categories either has; drift at or above the threshold.

``tests/drift/test_segment_drift.py`` checks they give Evidently's scores. Any other test
(a ``drift_method`` override, a p-value test on a small reference) goes through Evidently.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.drift.stattests import DriftSpec, StatTest, column_drift, prepare
from monitor.drift.summary import ColumnDrift
from monitor.records import Service

SEGMENT_DRIFT_ROWS = 5_000
"""The most rows of one segment its drift tests read (drawn with a fixed seed)."""


@dataclass(frozen=True)
class PreparedColumn:
    """One tested feature of the window, cleaned once for all segments."""

    spec: DriftSpec
    values: np.ndarray  # prepared values (missing ones dropped), in row order; category codes for categorical
    positions: np.ndarray  # the row of each value
    categories: tuple[str, ...] = ()  # what each code of a categorical feature stands for


def prepared_columns(
    service: Service, features: pd.DataFrame, tested: Sequence[ColumnDrift], skip: Sequence[str]
) -> Iterator[PreparedColumn]:
    """The features the check tested, as segments test them (not text ones, not those in ``skip``), one at a time."""
    for found in tested:
        if found.type == "text" or found.name in skip or found.name not in features.columns:
            continue
        feature = service.feature(found.name)
        spec = DriftSpec(found.name, found.type, feature.drift_method if feature else None,
                         feature.drift_threshold if feature else None)  # fmt: skip
        raw = features[found.name]
        if found.type == "numerical" and raw.dtype == np.float64:  # prepare's outcome, without its four passes
            numbers = raw.to_numpy()
            finite = np.isfinite(numbers)
            yield PreparedColumn(spec, numbers[finite], np.flatnonzero(finite))
            continue
        values = prepare(raw, found.type)
        positions = features.index.get_indexer(values.index)
        if found.type == "categorical":
            codes, uniques = pd.factorize(values)
            yield PreparedColumn(spec, codes, positions, tuple(str(u) for u in uniques))
        else:
            yield PreparedColumn(spec, values.to_numpy(), positions)


def segment_slices(column: PreparedColumn, codes: np.ndarray, count: int) -> list[np.ndarray]:
    """The column's values in each of ``count`` segments (``codes``: each row's segment, -1 for none),
    in row order, at most ``SEGMENT_DRIFT_ROWS`` of each: one stable sort for all of them, where a mask
    per segment read the whole column once per segment."""
    at = codes[column.positions]
    order = np.argsort(at, kind="stable")
    bounds = np.searchsorted(at[order], np.arange(count + 1))
    out = []
    for first, last in itertools.pairwise(bounds):
        rows = order[first:last]
        if len(rows) > SEGMENT_DRIFT_ROWS:
            rows = np.sort(np.random.default_rng(0).choice(rows, SEGMENT_DRIFT_ROWS, replace=False))
        out.append(column.values[rows])
    return out


def as_series(column: PreparedColumn, values: np.ndarray) -> pd.Series:
    """A segment's values as the stattests take them (categories as their texts)."""
    if column.categories:
        return pd.Series(np.asarray(column.categories, dtype=object)[values])
    return pd.Series(values)


def drifted(
    column: PreparedColumn, test: StatTest, reference: pd.Series, counts: dict[str, int], current: np.ndarray
) -> bool:
    """Whether ``current`` (from ``segment_slices``) drifted from the prepared ``reference`` by ``test``;
    ``counts`` are the reference's category counts (categorical features)."""
    spec = column.spec
    threshold = test.default_threshold if spec.threshold is None else spec.threshold
    if test.name == "wasserstein" and spec.type == "numerical":
        return wasserstein_norm(reference.to_numpy(dtype=float), np.sort(current)) >= threshold
    if test.name == "jensenshannon" and spec.type == "categorical":
        seen = np.bincount(current, minlength=len(column.categories))
        return jensenshannon(counts, column.categories, seen) >= threshold
    found = column_drift(spec, reference, as_series(column, current), test)
    return bool(found is not None and found.drifted)


def wasserstein_norm(reference: np.ndarray, current: np.ndarray) -> float:
    """Evidently's ``wasserstein`` score of two sorted samples."""
    every = np.concatenate((reference, current))
    every.sort(kind="stable")
    between = np.diff(every)
    below = every[:-1]
    ref_cdf = np.searchsorted(reference, below, side="right") / reference.size
    cur_cdf = np.searchsorted(current, below, side="right") / current.size
    distance = float(np.sum(np.abs(ref_cdf - cur_cdf) * between))
    return distance / max(float(np.std(reference)), 0.001)


def jensenshannon(reference: dict[str, int], categories: Sequence[str], current: np.ndarray) -> float:
    """Evidently's ``jensenshannon`` score of categories: the reference's counts by category against the
    current counts of ``categories``. Categories only the reference has add ``p ln 2`` each, whatever
    their split, so they are summed into one."""
    p = np.array([reference.get(c, 0) for c in categories], dtype=float)
    p = np.append(p, sum(reference.values()) - p.sum())
    q = np.append(current.astype(float), 0.0)
    p, q = p / p.sum(), q / q.sum()
    middle = (p + q) / 2
    return float(np.sqrt(max((_entropy(p, middle) + _entropy(q, middle)) / 2, 0.0)))


def _entropy(p: np.ndarray, q: np.ndarray) -> float:
    """The relative entropy of ``p`` to ``q`` (SciPy's ``rel_entr`` summed; ``q`` is positive where ``p`` is)."""
    present = p > 0
    return float(np.sum(p[present] * np.log(p[present] / q[present])))
