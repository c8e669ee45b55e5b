"""A bounded sample of a window as columns: features, prediction, label and probabilities."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.drift.quality import Outcomes
from monitor.drift.reference import value_key
from monitor.records import StoredPrediction


@dataclass(frozen=True)
class WindowSample:
    """The sampled rows of one window, column-wise."""

    features: pd.DataFrame
    predictions: pd.Series
    labels: pd.Series  # None where no label has arrived
    has_label: np.ndarray
    proba: pd.DataFrame | None  # one column per class key; NaN where a row sent none
    model_version: str | None

    @property
    def rows(self) -> int:
        """Number of sampled rows."""
        return len(self.features)

    @property
    def label_coverage(self) -> float:
        """Share of sampled rows whose label has arrived."""
        return float(self.has_label.mean()) if self.rows else 0.0

    def labelled(self) -> Outcomes:
        """Truth, prediction and probabilities of the rows that have a label and a prediction."""
        keep = self.has_label & self.predictions.notna().to_numpy()
        proba = None if self.proba is None else self.proba[keep].reset_index(drop=True)
        return Outcomes(self.labels[keep].reset_index(drop=True), self.predictions[keep].reset_index(drop=True), proba)


def window_sample(rows: Sequence[StoredPrediction]) -> WindowSample:
    """Turn stored predictions (as ``Store.sample_window`` returns them) into columns."""
    versions = Counter(r.model_version for r in rows if r.model_version)
    return WindowSample(
        features=pd.DataFrame.from_records([r.features for r in rows]),
        predictions=pd.Series([r.prediction for r in rows], dtype=object),
        labels=pd.Series([r.label if r.has_label else None for r in rows], dtype=object),
        has_label=np.fromiter((r.has_label for r in rows), dtype=bool, count=len(rows)),
        proba=_probabilities(rows),
        model_version=versions.most_common(1)[0][0] if versions else None,
    )


def _probabilities(rows: Sequence[StoredPrediction]) -> pd.DataFrame | None:
    """Class probabilities by class key: a dict maps class → p; a list is indexed by class 0..k-1."""
    if not any(r.probabilities for r in rows):
        return None
    records = [_as_dict(r.probabilities) for r in rows]
    frame = pd.DataFrame.from_records(records).astype(float)
    return frame[sorted(frame.columns)]


def _as_dict(probabilities: dict[str, float] | list[float] | None) -> dict[str, float]:
    if probabilities is None:
        return {}
    if isinstance(probabilities, list):
        return {str(i): float(p) for i, p in enumerate(probabilities)}
    return {value_key(k): float(p) for k, p in probabilities.items()}
