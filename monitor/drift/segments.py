"""Segments: drift, data quality and quality per value of a service's ``segments`` columns, and its cohorts.

    >>> found = segment_summary(service, window, reference, types, features, settings)
    >>> found.cohorts[0].segment, found.cohorts[0].drop
    ({'region': 'eu'}, 0.2)

Each segment column's ``segment_top`` most frequent values with at least
``segment_min_rows`` sampled rows are judged:

- drift share: each feature the check tested (but text features, and the segment columns
  themselves, constant within a segment) is tested again on the segment's rows, with the
  stattest Evidently's default selection picks for the segment's data (or the feature's
  ``drift_method``), against the reference's rows of that value when
  the reference has the column and ``segment_min_rows`` rows of the value (``reference:
  "segment"``), else against the whole reference (``"whole"``), which then says how the
  segment differs from the training population. At most ``SEGMENT_DRIFT_ROWS`` rows of a
  segment are tested, drawn with a fixed seed: the verdicts of the window sample's largest
  segments then cost what those of its small ones do;
- data quality: the share of missing feature cells, and of numerical cells outside the
  reference's range (one vectorised pass over the window, grouped by segment);
- quality: the cohorts' metric (``monitor.drift.cohorts``), realized where the segment has
  ``segment_min_rows`` labelled rows, else estimated from probabilities.

Cohorts (each judged value, and each pair of judged values of two columns) are ranked by
``monitor.drift.cohorts.ranked``.

Cost (``benchmarks/bench_segments.py``, 2 columns x 10 values, 1M-row window, 20 features):
about 1.4x the check without segments, on its 20k-row sample as on the whole window at once,
and no higher tracemalloc peak. Through Evidently's stattest call and a mask per segment it
was 2.7x on a 200k-row window, and the peak 2.4x at 1M rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitor.check_summary import SegmentFinding, SegmentsSummary
from monitor.config import CheckSettings
from monitor.drift.cohorts import (
    METRICS,
    Scores,
    cohort_moments,
    estimated_scores,
    ranked,
    realized_scores,
    reference_moments,
    segment_keys,
)
from monitor.drift.estimate import Calibrator
from monitor.drift.loaded import Reference
from monitor.drift.segment_drift import PreparedColumn, as_series, drifted, prepared_columns, segment_slices
from monitor.drift.stattests import DriftSpec, StatTest, choice_is_fixed, choose, prepare_reference
from monitor.drift.summary import ColumnDrift
from monitor.drift.window import WindowSample
from monitor.records import Service
from monitor.store import Store


def segment_summary(
    service: Service,
    window: WindowSample,
    reference: Reference | None,
    types: dict[str, str],
    features: Sequence[ColumnDrift],
    settings: CheckSettings,
    calibrator: Calibrator | None = None,
) -> SegmentsSummary | None:
    """What each judged segment of ``window`` shows, and its cohorts worst first (None without ``segments``)."""
    if not settings.segments:
        return None
    keys = segment_keys(window.features, settings.segments)
    skipped = {c: "no sampled prediction sends this key" for c in settings.segments if c not in keys.columns}
    top = {c: _top(keys[c], settings) for c in keys.columns}
    for column, values in top.items():
        if not values:
            skipped[column] = f"no value has the {settings.segment_min_rows} sampled rows segment_min_rows asks for"
    top = {c: v for c, v in top.items() if v}
    scores = _scores(service, window, calibrator, keys, top, settings.segment_min_rows)
    metric = METRICS[service.task]
    codes = {column: _codes(keys[column], values) for column, values in top.items()}
    masks = {(c, v): codes[c] == i for c, values in top.items() for i, v in enumerate(values)}
    drifts = _drifts(service, window, reference, features, settings, top, codes)
    cells = cell_counts(window.features, types, reference)
    findings = [
        _finding(reference, cells, settings, column, value, mask, drifts[(column, value)], scores)
        for (column, value), mask in masks.items()
    ]
    cohorts = _cohorts(service, window, reference, keys, top, scores, settings) if scores else ()
    return SegmentsSummary(tuple(settings.segments), metric, tuple(findings), cohorts, skipped)


def _top(keys: pd.Series, settings: CheckSettings) -> list[str]:
    counts = keys.value_counts()
    kept = sorted(
        ((int(n), str(v)) for v, n in counts[counts >= settings.segment_min_rows].items()), key=lambda c: (-c[0], c[1])
    )
    return [value for _, value in kept[: settings.segment_top]]


def _scores(
    service: Service,
    window: WindowSample,
    calibrator: Calibrator | None,
    keys: pd.DataFrame,
    top: dict[str, list[str]],
    min_rows: int,
) -> Scores | None:
    """Realized scores when some judged segment has enough labelled rows, else estimated ones, else None."""
    labelled = window.has_label & window.predictions.notna().to_numpy()
    realized = realized_scores(service.task, window.labels, window.predictions, labelled)
    if _enough(realized, keys, top, min_rows):
        return realized
    if service.task != "classification":
        return None
    estimated = estimated_scores(window.predictions, window.proba, calibrator)
    return estimated if _enough(estimated, keys, top, min_rows) else None


def _enough(scores: Scores, keys: pd.DataFrame, top: dict[str, list[str]], min_rows: int) -> bool:
    scored = ~np.isnan(scores.values)
    return any((keys.loc[scored, c].isin(values)).sum() >= min_rows for c, values in top.items())


def _finding(
    reference: Reference | None,
    cells: CellCounts,
    settings: CheckSettings,
    column: str,
    value: str,
    mask: np.ndarray,
    drifts: list[tuple[str, bool]],
    scores: Scores | None,
) -> SegmentFinding:
    rows = _reference_rows(reference, column, value, settings.segment_min_rows) if reference is not None else None
    missing, out_of_range = cells.shares(mask)
    quality, labelled = None, 0
    if scores is not None:
        scored = scores.values[mask]
        labelled = int((~np.isnan(scored)).sum())
        quality = float(np.nanmean(scored)) if labelled >= settings.segment_min_rows else None
    return SegmentFinding(
        column=column,
        value=value,
        rows=int(mask.sum()),
        drift_share=sum(hit for _, hit in drifts) / len(drifts) if drifts else None,
        drifted_features=tuple(name for name, hit in drifts if hit),
        reference="segment" if rows is not None else "whole",
        reference_rows=int(rows.sum()) if rows is not None else reference.rows if reference is not None else 0,
        missing_share=missing,
        out_of_range_share=out_of_range,
        quality=quality,
        quality_source=scores.source if scores is not None and quality is not None else None,
        labelled=labelled,
    )


def _drifts(
    service: Service,
    window: WindowSample,
    reference: Reference | None,
    features: Sequence[ColumnDrift],
    settings: CheckSettings,
    top: dict[str, list[str]],
    codes: dict[str, np.ndarray],
) -> dict[tuple[str, str], list[tuple[str, bool]]]:
    """Each segment's verdict per tested feature. Feature by feature, so that one prepared column of a
    large window is held at a time (preparing all of them first doubled the peak on a 1M-row window)."""
    out: dict[tuple[str, str], list[tuple[str, bool]]] = {(c, v): [] for c, values in top.items() for v in values}
    if reference is None:
        return out
    for prepared in prepared_columns(service, window.features, features, settings.segments):
        for column, values in top.items():
            for value, current in zip(values, segment_slices(prepared, codes[column], len(values)), strict=True):
                verdict = _verdict(reference, prepared, settings, column, value, current)
                if verdict is not None:
                    out[(column, value)].append((prepared.spec.name, verdict))
    return out


def _codes(keys: pd.Series, values: list[str]) -> np.ndarray:
    """Each row's index in ``values`` (-1 for a value not judged), in 16 bits: numpy sorts those by radix."""
    return pd.Categorical(keys, categories=values).codes.astype(np.int16)


def _verdict(
    reference: Reference,
    prepared: PreparedColumn,
    settings: CheckSettings,
    column: str,
    value: str,
    current: np.ndarray,
) -> bool | None:
    """Whether one segment drifted in one feature (None when either side has no values)."""
    rows = _reference_rows(reference, column, value, settings.segment_min_rows)
    base = _reference_column(reference, prepared.spec, column, value, rows)
    if base is None or base.empty or not current.size:
        return None
    key = (column, value, rows is None)
    test = _test(reference, prepared, base, current, key)
    return drifted(prepared, test, base, _counts(reference, base, (prepared.spec.name, *key)), current)


def _test(
    reference: Reference, column: PreparedColumn, base: pd.Series, values: np.ndarray, key: tuple[Any, ...]
) -> StatTest:
    """Evidently's own choice for the segment's data (it picks by size: a p-value test below 1,000
    reference rows, where a distance would read sampling noise as drift), kept when it cannot change."""
    spec = column.spec
    if not choice_is_fixed(spec, base):
        return choose(spec, base, as_series(column, values))
    return reference.kept(("segment-test", spec, *key), lambda: choose(spec, base, as_series(column, values[:1])))


def _counts(reference: Reference, base: pd.Series, key: tuple[Any, ...]) -> dict[str, int]:
    """The category counts of a prepared reference column (kept), for the Jensen-Shannon test."""
    if not isinstance(base.dtype, pd.CategoricalDtype):
        return {}
    return reference.kept(("segment-counts", *key), lambda: {str(k): int(n) for k, n in base.value_counts().items()})


def _reference_rows(reference: Reference, column: str, value: str, min_rows: int) -> np.ndarray | None:
    """Which reference rows have ``column == value``, when it has the column and enough of them."""
    if column not in reference.frame.columns:
        return None
    keys = reference.kept(("segment-keys", column), lambda: segment_keys(reference.frame, (column,))[column])
    rows: np.ndarray = reference.kept(("segment-rows", column, value), lambda: (keys == value).to_numpy())
    return rows if rows.sum() >= min_rows else None


def _reference_column(
    reference: Reference, spec: DriftSpec, column: str, value: str, rows: np.ndarray | None
) -> pd.Series | None:
    """The reference column a segment is compared with: its own rows when ``rows`` says which, else all."""
    if rows is None:
        return reference.column(spec.name, spec.type)
    if spec.name not in reference.frame.columns:
        return None
    key = ("segment-column", column, value, spec.name, spec.type)
    return reference.kept(key, lambda: prepare_reference(reference.frame.loc[rows, spec.name], spec.type))


@dataclass(frozen=True)
class CellCounts:
    """Per row of the window: missing feature cells, numerical cells, and those outside the reference's range."""

    features: int
    missing: np.ndarray
    numerical: np.ndarray
    outside: np.ndarray

    def shares(self, mask: np.ndarray) -> tuple[float, float]:
        """Missing share of the feature cells, out-of-range share of the numerical ones, in ``mask``'s rows."""
        cells = int(mask.sum()) * self.features
        numerical = int(self.numerical[mask].sum())
        missing = float(self.missing[mask].sum() / cells) if cells else 0.0
        return missing, float(self.outside[mask].sum() / numerical) if numerical else 0.0


def cell_counts(features: pd.DataFrame, types: dict[str, str], reference: Reference | None) -> CellCounts:
    """One pass over the window's cells, which every segment then sums over its rows."""
    rows = len(features)
    missing, numerical, outside = np.zeros(rows), np.zeros(rows), np.zeros(rows)
    columns: dict[str, dict[str, Any]] = reference.stats.get("columns", {}) if reference is not None else {}
    for name, kind in types.items():  # column by column: a copy of the whole frame cost 170 MB at 1M rows
        if name not in features.columns:
            missing += 1
            continue
        missing += features[name].isna().to_numpy()
        bounds = columns.get(name, {})
        if kind != "numerical" or bounds.get("min") is None:
            continue
        numbers = pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=float)
        known = ~np.isnan(numbers)
        numerical += known
        outside += known & ((numbers < bounds["min"]) | (numbers > bounds["max"]))
    return CellCounts(len(types), missing, numerical, outside)


def _cohorts(
    service: Service,
    window: WindowSample,
    reference: Reference | None,
    keys: pd.DataFrame,
    top: dict[str, list[str]],
    scores: Scores,
    settings: CheckSettings,
) -> tuple[Any, ...]:
    if reference is None:
        return ()
    metric = METRICS[service.task]
    current = cohort_moments(keys, scores.values, {c: set(v) for c, v in top.items()}, settings.segment_min_rows)
    own = _own_baselines(service, reference, settings)
    first = reference.stats.get("segment_baselines", {}).get(window.model_version or "", {})
    return ranked(metric, scores.source, current, own, first)


def _own_baselines(service: Service, reference: Reference, settings: CheckSettings) -> dict[str, Any]:
    key = ("segment-baselines", settings.segments, settings.segment_min_rows, service.task, service.target)
    return reference.kept(
        key, lambda: reference_moments(reference.frame, service, settings.segments, settings.segment_min_rows)
    )


def record_first_baselines(store: Store, service: Service, window: WindowSample, reference: Reference) -> None:
    """Keep this window's realized quality as the baseline of each cohort that has none yet (from the
    reference or an earlier window) and ``segment_min_rows`` labelled rows here."""
    settings = CheckSettings.of(service)
    if not settings.segments or not window.rows:
        return
    keys = segment_keys(window.features, settings.segments)
    top = {c: set(_top(keys[c], settings)) for c in keys.columns}
    labelled = window.has_label & window.predictions.notna().to_numpy()
    scores = realized_scores(service.task, window.labels, window.predictions, labelled)
    current = cohort_moments(keys, scores.values, {c: v for c, v in top.items() if v}, settings.segment_min_rows)
    version = window.model_version or ""
    known = set(_own_baselines(service, reference, settings))
    known |= set(reference.stats.get("segment_baselines", {}).get(version, {}))
    new = {label: found.as_dict() for label, (_, found) in current.items() if label not in known}
    if new:
        kept = store.set_segment_baselines(service, reference.version, version, new)
        reference.stats.setdefault("segment_baselines", {})[version] = kept
