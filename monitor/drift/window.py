"""A bounded sample of a window as columns: features, prediction, label and probabilities."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.drift.quality import Outcomes
from monitor.drift.reference import value_key
from monitor.records import SampledColumns


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

    @property
    def labelled_mask(self) -> np.ndarray:
        """True for the rows that have a label and a prediction."""
        return self.has_label & self.predictions.notna().to_numpy()

    def labelled(self) -> Outcomes:
        """Truth, prediction and probabilities of the rows that have a label and a prediction."""
        keep = self.labelled_mask
        proba = None if self.proba is None else self.proba[keep].reset_index(drop=True)
        return Outcomes(self.labels[keep].reset_index(drop=True), self.predictions[keep].reset_index(drop=True), proba)


def window_sample(sample: SampledColumns) -> WindowSample:
    """Turn a window's sampled columns (as ``Store.sample_columns`` returns them) into a frame and series."""
    versions = Counter(v for v in sample.model_versions if v)
    has_label = np.array(sample.has_label, dtype=bool)
    labels = pd.Series(sample.labels, dtype=object)
    return WindowSample(
        features=pd.DataFrame.from_records(sample.features) if len(sample) else pd.DataFrame(),
        predictions=pd.Series(sample.predictions, dtype=object),
        labels=labels.where(has_label, None),
        has_label=has_label,
        proba=_probabilities(sample.probabilities),
        model_version=versions.most_common(1)[0][0] if versions else None,
    )


def _probabilities(probabilities: list[dict[str, float] | list[float] | None]) -> pd.DataFrame | None:
    """Class probabilities by class key: a dict maps class → p; a list is indexed by class 0..k-1."""
    if not any(probabilities):
        return None
    records = [_as_dict(p) for p in probabilities]
    frame = pd.DataFrame.from_records(records).astype(float)
    return frame[sorted(frame.columns)]


def _as_dict(probabilities: dict[str, float] | list[float] | None) -> dict[str, float]:
    if probabilities is None:
        return {}
    if isinstance(probabilities, list):
        return {str(i): float(p) for i, p in enumerate(probabilities)}
    return {value_key(k): float(p) for k, p in probabilities.items()}
