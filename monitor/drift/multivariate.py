"""Multivariate drift: joint changes of the inputs that no single feature's test shows.

Two methods, each with its own verdict beside the per-feature ones (a correlation that
flips while every marginal stays put is the case they exist for):

- ``pca``: NannyML's data reconstruction. The reference's numerical and categorical
  features are encoded (categories by their reference frequency, as NannyML does), missing
  values imputed with the reference mean, standardized; a PCA keeping 65% of the variance is
  fitted on the reference, and a window's score is the mean Euclidean distance between its
  rows and their reconstructions. Its bounds are mean ± 3 standard deviations of the same
  mean over chunks of the reference. Two choices differ from NannyML, both to keep false
  alarms rare on a window much larger or smaller than the reference's chunks: the
  reference's chunk errors come from PCAs fitted without that chunk (5 folds, so they are
  not in-sample and lower than a fresh window's), and the chunks' spread is rescaled to the
  window's size (the standard deviation of a mean of ``n`` independent rows falls as
  ``1/sqrt(n)``).
- ``classifier``: a domain classifier, as Evidently's and Alibi Detect's are: a gradient-boosted
  tree model (which sees interactions, unlike Evidently's linear one) learns to tell
  reference rows from window rows; its 5-fold cross-validated ROC AUC is the score. Drift
  when the AUC exceeds ``auc_threshold`` (0.55, Evidently's default) and, on small samples,
  also three standard errors above 0.5 (the AUC's spread when both sides come from one
  distribution, ``sqrt((n1 + n2 + 1) / (12 n1 n2))``, Mann and Whitney), so that a few hundred
  rows cannot drift by chance.

Settings: ``services[].multivariate`` (``monitor.config.MultivariateConfig``). Both sides
are capped at ``max_rows`` rows (a uniform draw with a fixed seed), so the cost
does not grow with the window. Text features are not part of it (see ``monitor.drift.text``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from monitor.check_summary import JointDrift, MultivariateSummary
from monitor.config import CheckSettings, MultivariateConfig
from monitor.drift.reference import value_keys

MIN_ROWS = 50
"""Rows each side needs before either method says anything."""
FOLDS = 5
CHUNKS = 10
"""The reference is cut into this many chunks (at most the window's size each) for the PCA's bounds."""
STD_MULTIPLIER = 3.0
_SEED = 0


def settings_of(config: Mapping[str, Any]) -> MultivariateConfig:
    """The ``multivariate`` settings stored in a service's config (defaults for what it leaves out)."""
    return CheckSettings.decode(config).multivariate


class Encoder:
    """Reference-fitted encoding of a frame as a standardized float matrix.

    Numbers as they are, categories by their share in the reference (an unseen one is 0);
    then missing values become the reference's mean and each column is standardized.
    """

    def __init__(self, reference: pd.DataFrame, types: Mapping[str, str]) -> None:
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        wanted = {n: k for n, k in types.items() if k in ("numerical", "categorical") and n in reference}
        self.types = wanted
        self.frequencies = {
            name: value_keys(reference[name].dropna()).value_counts(normalize=True)
            for name, kind in wanted.items()
            if kind == "categorical"
        }
        raw = self._raw(reference)
        self.types = {n: k for n, k in wanted.items() if raw[n].notna().any()}  # a column without values says nothing
        self.scaler = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler())
        if self.types:
            self.scaler.fit(raw[list(self.types)])

    @property
    def columns(self) -> int:
        """Encoded columns (features with at least one reference value)."""
        return len(self.types)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The standardized matrix of ``frame``'s features."""
        return np.asarray(self.scaler.transform(self._raw(frame)), dtype=float)

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({name: self._column(frame, name, kind) for name, kind in self.types.items()})

    def _column(self, frame: pd.DataFrame, name: str, kind: str) -> np.ndarray:
        if name not in frame.columns:
            return np.full(len(frame), np.nan)
        values = frame[name]
        if kind == "numerical":
            numbers = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
            return np.where(np.isfinite(numbers), numbers, np.nan)
        present = values.notna().to_numpy()
        keys = value_keys(values[present])
        shares = np.full(len(values), np.nan)
        shares[present] = keys.map(self.frequencies[name]).fillna(0.0).to_numpy(dtype=float)
        return shares


@dataclass(frozen=True)
class Reconstruction:
    """PCAs fitted on folds of the reference, and each reference row's error from the one that did not see it."""

    folds: tuple[tuple[Encoder, Any], ...]  # (encoder, sklearn PCA) fitted on all but one fold each
    reference_errors: np.ndarray
    features: int

    @classmethod
    def fit(cls, reference: pd.DataFrame, types: Mapping[str, str], variance: float) -> Reconstruction:
        """Fit an encoder and a PCA on each 4/5 of ``reference``; score the fifth each left out."""
        from sklearn.decomposition import PCA
        from sklearn.model_selection import KFold

        whole = Encoder(reference, types)
        components = PCA(n_components=variance, svd_solver="full").fit(whole.transform(reference)).n_components_
        errors = np.empty(len(reference))
        folds = []
        for train, held in KFold(FOLDS, shuffle=True, random_state=_SEED).split(reference):
            encoder = Encoder(reference.iloc[train], types)
            pca = PCA(n_components=min(components, encoder.columns), random_state=_SEED)
            pca.fit(encoder.transform(reference.iloc[train]))
            errors[held] = _errors(pca, encoder.transform(reference.iloc[held]))
            folds.append((encoder, pca))
        return cls(tuple(folds), errors, whole.columns)

    def drift(self, current: pd.DataFrame) -> JointDrift:
        """The window's mean reconstruction error against the reference chunks' bounds.

        The window is scored by the same fold models as the reference rows (its error is their
        average): a PCA fitted on all the reference reconstructs a little better, which on a
        reference of a few hundred rows put one window in ten below the lower bound.
        """
        score = float(np.mean([_errors(pca, encoder.transform(current)).mean() for encoder, pca in self.folds]))
        lower, upper = self.bounds(len(current))
        return JointDrift(
            method="pca",
            score=score,
            lower=lower,
            upper=upper,
            drifted=bool(not lower <= score <= upper),
            reference_rows=len(self.reference_errors),
            current_rows=len(current),
            features=self.features,
        )

    def bounds(self, rows: int) -> tuple[float, float]:
        """Mean ± 3 standard deviations of the mean error of ``rows`` reference rows, widened by the
        uncertainty of the reference's own mean (the window is compared with an estimate, not the truth)."""
        errors = self.reference_errors
        spread = float(errors.std(ddof=1)) * np.sqrt(1 / rows + 1 / len(errors)) if len(errors) > 1 else 0.0
        centre = float(errors.mean())
        return float(centre - STD_MULTIPLIER * spread), float(centre + STD_MULTIPLIER * spread)


def _errors(pca: Any, matrix: np.ndarray) -> np.ndarray:
    """Each row's Euclidean distance to its reconstruction."""
    rebuilt = pca.inverse_transform(pca.transform(matrix))
    return np.asarray(np.sqrt(((matrix - rebuilt) ** 2).sum(axis=1)))


def classifier_drift(
    reference: pd.DataFrame, current: pd.DataFrame, encoder: Encoder, auc_threshold: float
) -> JointDrift:
    """The cross-validated ROC AUC of a classifier telling reference rows from window rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    rows = np.vstack([encoder.transform(reference), encoder.transform(current)])
    side = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    model = HistGradientBoostingClassifier(max_iter=50, early_stopping=False, random_state=_SEED)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=_SEED)
    with threadpool_limits(1):  # OpenMP threads on a busy machine: 114 s instead of 5 s for 570 rows
        scores = cross_val_predict(model, rows, side, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(side, scores))
    upper = max(auc_threshold, 0.5 + STD_MULTIPLIER * null_auc_std(len(reference), len(current)))
    return JointDrift(
        method="classifier",
        score=auc,
        lower=None,
        upper=float(upper),
        drifted=bool(auc > upper),
        reference_rows=len(reference),
        current_rows=len(current),
        features=encoder.columns,
    )


def null_auc_std(first: int, second: int) -> float:
    """The standard deviation of the ROC AUC when both sides come from one distribution (Mann-Whitney)."""
    return float(np.sqrt((first + second + 1) / (12 * first * second)))


def capped(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, a uniform draw with a fixed seed."""
    return frame if len(frame) <= rows else frame.sample(rows, random_state=_SEED)


@dataclass(frozen=True)
class MultivariateFound:
    """What the multivariate methods found in one window: their verdicts and why any did not run."""

    verdicts: tuple[JointDrift, ...] = ()
    skipped: Mapping[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        """Whether any method found drift."""
        return any(v.drifted for v in self.verdicts)

    def summary(self) -> MultivariateSummary:
        """The ``multivariate`` part of a check's summary."""
        return MultivariateSummary(self.drifted, {v.method: v for v in self.verdicts}, dict(self.skipped))


class Detector:
    """The reference side of the multivariate methods, fitted once and kept with the reference."""

    def __init__(self, reference: pd.DataFrame, types: Mapping[str, str], settings: MultivariateConfig) -> None:
        self.settings = settings
        self.reference = capped(reference, settings.max_rows)
        self.types = types
        self.features = sum(kind in ("numerical", "categorical") and name in reference for name, kind in types.items())
        wide = self.features > settings.max_features  # too costly: not even encoded
        self.encoder = Encoder(self.reference, {} if wide else types)
        self._reconstruction: Reconstruction | None = None

    def detect(self, current: pd.DataFrame) -> MultivariateFound:
        """Each configured method's verdict on ``current``, or why it has none."""
        current = capped(current, self.settings.max_rows)
        problem = self._problem(len(current))
        if problem:
            return MultivariateFound(skipped={method: problem for method in self.settings.methods})
        verdicts: list[JointDrift] = []
        skipped: dict[str, str] = {}
        for method in self.settings.methods:
            if method == "pca" and self.encoder.columns < 2:
                skipped[method] = "a reconstruction needs at least 2 numerical or categorical features"
                continue
            verdicts.append(self._pca(current) if method == "pca" else self._classifier(current))
        return MultivariateFound(tuple(verdicts), skipped)

    def _problem(self, rows: int) -> str:
        if self.features > self.settings.max_features:
            return (
                f"{self.features} features are more than multivariate.max_features "
                f"({self.settings.max_features}); raise it to run the joint methods (their cost grows "
                "with the square of the features)"
            )
        if self.encoder.columns == 0:
            return "no numerical or categorical feature has reference values"
        if min(rows, len(self.reference)) < MIN_ROWS:
            sides = f"the window has {rows}, the reference {len(self.reference)}"
            return f"needs at least {MIN_ROWS} rows on each side; {sides}"
        return ""

    def _pca(self, current: pd.DataFrame) -> JointDrift:
        if self._reconstruction is None:
            self._reconstruction = Reconstruction.fit(self.reference, self.types, self.settings.variance)
        return self._reconstruction.drift(current)

    def _classifier(self, current: pd.DataFrame) -> JointDrift:
        return classifier_drift(self.reference, current, self.encoder, self.settings.auc_threshold)
