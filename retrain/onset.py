"""When an episode's change began, so that its retrain trains on data from after it.

A retrain that reacts to a drift or decay episode and trains on the whole ``data_window``
learns mostly the concept the change replaced: with a one-hour window and a change detected
ten minutes in, five sixths of its rows are from before. ``episode_onset`` finds where the
change began:

- the episode's first alert started (``started_at``) when a check first saw the change,
  within about two check windows of it (a later alert is a missed detection), so the lookback
  is ``LOOKBACK_WINDOWS`` windows: a change found two windows before the alert still has as
  many windows of rows before it as after, where a two-window lookback left it at the edge
  (a change 1.9 windows old had 0.1 of a window before it, and no significant statistic);
- the rows of the lookback are those of the model version that served last before the alert
  (the version that decayed): another version's errors, from before a promotion, would make
  a change point of their own;
- in that lookback, the labelled rows' errors (misclassified, or absolute error for a
  regression) are searched for the point where their mean shifted up, with the CUSUM
  statistic ``max |S_k| / (sd * sqrt(n))`` (a Brownian bridge's supremum under no change:
  above ``CHANGE_STATISTIC`` with probability about 1%);
- a significant shift is the onset; without one (no labels yet, a gradual change, a drift
  episode the model's errors do not show) the onset is ``started_at`` itself, which is after
  the change however it came.

The retrain then waits until ``RetrainConfig.min_labelled_rows`` labelled rows from after the
onset are stored (``retrain.tasks.RetrainTrigger``), and trains on those (plus the reference
at ``reference_weight``), holding out the most recent of them for the gate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.records import Service, StoredPrediction
    from monitor.store import Store
    from retrain.episodes import Episode

CHANGE_STATISTIC = 1.63
"""Kolmogorov's 1% point: the CUSUM statistic a shift must pass to count as the onset."""
MIN_SEGMENT = 30
"""Labelled rows each side of a change point needs, so that a few early errors do not make one."""
LOOKBACK_ROWS = 20_000
"""Rows of the lookback read to find the change point (a uniform sample of it)."""
LOOKBACK_WINDOWS = 4.0
"""Check windows before the episode's first alert searched for the change."""


def episode_onset(store: Store, service: Service, episode: Episode, lookback: float) -> float:
    """When the change ``episode`` reacts to began: a shift in the labelled rows' errors in the
    ``lookback`` seconds before its first alert started, else that start itself."""
    started = min(a.started_at for a in episode.alerts)
    rows = store.sample_window(service, started - lookback, started, LOOKBACK_ROWS)
    if rows:
        decayed = max(rows, key=lambda r: r.ts).model_version
        rows = [r for r in rows if r.model_version == decayed]
    times, errors = row_errors(rows, service.task)
    found = change_point(errors)
    return times[found] if found is not None else started


def row_errors(rows: Sequence[StoredPrediction], task: str) -> tuple[list[float], list[float]]:
    """Times and errors of the labelled rows, in time order: 1/0 for a wrong/right class, the
    absolute error for a regression (rows whose values cannot be compared are left out)."""
    times, errors = [], []
    for row in sorted(rows, key=lambda r: r.ts):
        if not row.has_label or row.label is None or row.prediction is None:
            continue
        error = _error(row.prediction, row.label, task)
        if error is not None:
            times.append(row.ts)
            errors.append(error)
    return times, errors


def _error(prediction: object, label: object, task: str) -> float | None:
    if task != "regression":
        return float(str(prediction) != str(label))
    try:
        value = abs(float(prediction) - float(label))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def change_point(errors: Sequence[float]) -> int | None:
    """The index of the first row after an upward shift in the mean of ``errors``, when the
    CUSUM statistic says the shift is significant (see the module docstring); else None."""
    n = len(errors)
    if n < 2 * MIN_SEGMENT:
        return None
    mean = sum(errors) / n
    spread = math.sqrt(sum((e - mean) ** 2 for e in errors) / (n - 1))
    if spread == 0:
        return None
    best, at, running = 0.0, None, 0.0
    for k, error in enumerate(errors[:-MIN_SEGMENT], start=1):
        running += error - mean  # below zero while the errors before k are fewer than average
        if k >= MIN_SEGMENT and -running > best:
            best, at = -running, k
    if at is None or best / (spread * math.sqrt(n)) < CHANGE_STATISTIC:
        return None
    return at
