"""Cohorts: quality per segment value (and per pair of values) against the cohort's own baseline.

A cohort's quality is the mean of a per-row score: whether the prediction was right
(accuracy, classification) or its absolute error (MAE, regression); before labels arrive,
a classifier's calibrated probability of being right (the estimate of
``monitor.drift.estimate``, row by row). Being means, they are computed for every cohort
at once with one pandas ``groupby``, not one metric call per cohort.

Its baseline is its own, not the service's: the cohort's quality on the reference when the
reference has labels, predictions and the segment columns (and at least ``min_rows`` rows of
the cohort), else the cohort's quality in its first window with ``min_rows`` labelled rows,
which ``record_first_baselines`` keeps in the reference's statistics (first writer wins;
that window itself has nothing to compare with). A cohort with neither is not ranked.

Cohorts are ranked by the low end of the 95% interval of their drop (a Welch z interval of
two means; for accuracy the variance is that of a proportion smoothed by one right and one
wrong row, so a cohort right on every row still has some doubt): a large cohort whose
quality surely fell outranks a small one whose fall may be luck, and ``significant`` says
the low end is above zero. A pair of values whose drop its single value's (significant)
drop explains, within the pair's margin of error, says so (``explained_by``) and ranks just
after that value: where a region fell, the region is the finding, not its unluckiest channel.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np
import pandas as pd

from monitor.check_summary import COHORT_METRICS, Cohort
from monitor.drift.estimate import Calibrator
from monitor.drift.quality import POSITIVE
from monitor.drift.reference import PREDICTION, target_column, value_key, value_keys
from monitor.quality_metrics import metric as quality_metric
from monitor.records import Service

Z = 1.959964
"""The two-sided 95% normal quantile."""
METRICS = COHORT_METRICS
"""The metric cohorts are judged by, per task: a mean of per-row scores, hence one groupby."""
MISSING = "(missing)"
"""The segment value of a row that sent none."""


@dataclass(frozen=True)
class Moments:
    """Count, mean and variance of a cohort's per-row scores."""

    rows: int
    mean: float
    var: float

    def as_dict(self) -> dict[str, float]:
        """As kept in the reference's statistics."""
        return {"rows": self.rows, "mean": self.mean, "var": self.var}

    @classmethod
    def of(cls, data: Mapping[str, float]) -> Moments:
        """The moments kept as ``data``."""
        return cls(int(data["rows"]), float(data["mean"]), float(data["var"]))


@dataclass(frozen=True)
class Scores:
    """Per-row scores of a window's rows (NaN where a row has none) and where they come from."""

    values: np.ndarray
    source: str  # "realized" or "estimated"


def segment_keys(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Each segment column's values as text keys (``value_key``), ``MISSING`` where a row sent none;
    columns the frame lacks are left out."""
    out = {}
    for column in columns:
        if column in frame.columns:
            values = frame[column]
            present = values.notna()
            keys = pd.Series(MISSING, index=frame.index, dtype=object)
            keys[present] = value_keys(values[present]).to_numpy()
            out[column] = keys
    return pd.DataFrame(out, index=frame.index)


def realized_scores(task: str, truth: pd.Series, predicted: pd.Series, labelled: np.ndarray) -> Scores:
    """Right (1) or wrong (0), or the absolute error, of each labelled row; NaN for the others."""
    values = np.full(len(truth), np.nan)
    if labelled.any():
        values[labelled] = _score(task, truth[labelled], predicted[labelled])
    return Scores(values, "realized")


def _score(task: str, truth: pd.Series, predicted: pd.Series) -> np.ndarray:
    if task == "classification":
        return (truth.map(value_key).to_numpy() == predicted.map(value_key).to_numpy()).astype(float)
    t = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float)
    p = pd.to_numeric(predicted, errors="coerce").to_numpy(dtype=float)
    return np.abs(t - p)


def estimated_scores(predictions: pd.Series, proba: pd.DataFrame | None, calibrator: Calibrator | None) -> Scores:
    """Each row's probability of being right, from its (calibrated) probabilities; NaN without them."""
    values = np.full(len(predictions), np.nan)
    if proba is None:
        return Scores(values, "estimated")
    predicted = predictions.map(lambda v: None if v is None else value_key(v))
    matrix = proba.fillna(0.0)
    if set(matrix.columns) <= {"0", "1"} and set(predicted.dropna()) <= {"0", "1"}:
        positive = matrix[POSITIVE] if POSITIVE in matrix.columns else 1.0 - matrix["0"]
        p = np.clip(positive.to_numpy(dtype=float), 0.0, 1.0)
        p = np.clip(calibrator(p), 0.0, 1.0) if calibrator else p
        values = np.where(predicted.to_numpy() == POSITIVE, p, 1.0 - p)
    else:
        normalized = matrix.div(matrix.sum(axis=1).clip(lower=1e-12), axis=0)
        for column in normalized.columns:
            said = (predicted == column).to_numpy()
            values[said] = normalized[column].to_numpy(dtype=float)[said]
    sent = predicted.notna().to_numpy() & proba.notna().any(axis=1).to_numpy()
    return Scores(np.where(sent, values, np.nan), "estimated")


def moments(
    keys: pd.DataFrame, scores: np.ndarray, columns: list[str], min_rows: int
) -> dict[tuple[str, ...], Moments]:
    """Moments of the scores per value (or pair of values) of ``columns``, for groups of at least ``min_rows``."""
    frame = keys[columns].assign(_score=scores)
    grouped = frame.groupby(columns, sort=False, dropna=False)["_score"].agg(["count", "mean", "var"])
    grouped = grouped[grouped["count"] >= min_rows]
    out = {}
    for key, row in zip(grouped.index, grouped.itertuples(index=False), strict=True):
        values = key if isinstance(key, tuple) else (key,)
        var = 0.0 if np.isnan(row.var) else float(row.var)
        out[tuple(str(v) for v in values)] = Moments(int(row.count), float(row.mean), var)
    return out


def cohort_moments(
    keys: pd.DataFrame, scores: np.ndarray, top: Mapping[str, set[str]], min_rows: int
) -> dict[str, tuple[dict[str, str], Moments]]:
    """Every cohort (each top value of a column, each pair of top values of two columns) with enough
    scored rows, by its label."""
    out: dict[str, tuple[dict[str, str], Moments]] = {}
    for columns in _groupings(list(top)):
        for values, found in moments(keys, scores, list(columns), min_rows).items():
            segment = dict(zip(columns, values, strict=True))
            if all(segment[c] in top[c] for c in columns):
                out[_label(segment)] = (segment, found)
    return out


def _groupings(columns: list[str]) -> Iterator[tuple[str, ...]]:
    yield from ((c,) for c in columns)
    yield from combinations(columns, 2)


def _label(segment: Mapping[str, str]) -> str:
    return ",".join(f"{column}={value}" for column, value in sorted(segment.items()))


def reference_moments(
    frame: pd.DataFrame, service: Service, columns: tuple[str, ...], min_rows: int
) -> dict[str, Moments]:
    """The cohorts' quality on the reference, by label: empty unless it has labels, predictions and segment columns."""
    target = target_column(service)
    present = [c for c in columns if c in frame.columns]
    if target not in frame.columns or PREDICTION not in frame.columns or not present:
        return {}
    rows = frame[frame[target].notna() & frame[PREDICTION].notna()]
    keys = segment_keys(rows, tuple(present))
    scores = _score(service.task, rows[target], rows[PREDICTION])
    out = {}
    for grouping in _groupings(present):
        for values, found in moments(keys, scores, list(grouping), min_rows).items():
            out[_label(dict(zip(grouping, values, strict=True)))] = found
    return out


def ranked(
    metric: str,
    source: str,
    current: Mapping[str, tuple[dict[str, str], Moments]],
    own: Mapping[str, Moments],
    first: Mapping[str, Mapping[str, float]],
) -> tuple[Cohort, ...]:
    """The cohorts that have a baseline (``own`` from the reference, else ``first`` kept from a window), worst first."""
    found = []
    for label, (segment, now) in current.items():
        if label in own:
            found.append(judged(metric, source, segment, now, own[label], "reference"))
        elif label in first:
            found.append(judged(metric, source, segment, now, Moments.of(first[label]), "first_window"))
    found = [_explained(c, found) for c in found]
    by_label = {c.label: c for c in found}

    def rank(c: Cohort) -> tuple[bool, float, int, float, int]:
        parent = by_label[c.explained_by] if c.explained_by else c
        return (not parent.significant, -parent.lower, int(c.explained_by is not None), -c.lower, -c.rows)

    return tuple(sorted(found, key=rank))


def _explained(pair: Cohort, cohorts: list[Cohort]) -> Cohort:
    """``pair`` marked as explained by the worst significant single value it lies in whose drop is within
    the pair's own margin of error of its own: then the pair ranks right after it, not above it (the ten
    channels of a fallen region all fall with it, and one of them is always a little unluckier)."""
    if len(pair.segment) < 2:
        return pair
    margin = pair.drop - pair.lower
    parents = [c for c in cohorts if len(c.segment) == 1 and c.significant
               and set(c.segment.items()) <= set(pair.segment.items()) and pair.drop - c.drop <= margin]  # fmt: skip
    if not parents:
        return pair
    return replace(pair, explained_by=max(parents, key=lambda c: c.drop).label)


def judged(
    metric: str, source: str, segment: dict[str, str], now: Moments, baseline: Moments, baseline_source: str
) -> Cohort:
    """One cohort against its baseline: the drop (positive = worse), its interval's low end, and the verdict."""
    drop = -quality_metric(metric).improvement(now.mean, baseline.mean)
    se = float(np.sqrt(_variance(metric, now) / now.rows + _variance(metric, baseline) / baseline.rows))
    lower = drop - Z * se
    return Cohort(
        segment=segment,
        metric=metric,
        source=source,
        rows=now.rows,
        quality=now.mean,
        baseline=baseline.mean,
        baseline_rows=baseline.rows,
        baseline_source=baseline_source,
        drop=drop,
        lower=lower,
        significant=bool(lower > 0),
    )


def _variance(metric: str, found: Moments) -> float:
    if metric != "accuracy":
        return found.var
    smoothed = (found.mean * found.rows + 1) / (found.rows + 2)  # one right and one wrong row added
    return smoothed * (1 - smoothed)
