"""Attribution drift: which features the model leans on now, against what it leaned on at training.

For a service whose model is served through mlwatch (its versions are in the MLflow registry),
a check with ``attribution.enabled`` computes the permutation importance of each feature for
the window's model version twice: on the labelled rows of the reference (once per reference
and version, kept with it) and on the window's labelled rows. Importance is the drop of the
task's score (accuracy, or minus the mean absolute error) when a feature's values are shuffled,
by ``sklearn.inspection.permutation_importance``, averaged over ``repeats`` shuffles; negative
drops count as 0, and each feature's *share* is its drop over the sum of drops.

The verdict: drift when a feature's share moved by more than ``threshold`` (default 0.1, ten
points of the total importance), reported with the largest move, the Spearman correlation of
the two rankings, and both rankings. A concept change that makes a feature useless shows here
before any other feature drifts: the model still reads it, and it no longer helps.

    >>> found = attribution_drift(reference_shares, current_shares, threshold=0.1)
    >>> found.drifted, found.top_reference, found.top_current
    (True, ('income', 'age'), ('age', 'income'))

The model is loaded by a ``Models`` source (``MlflowModels`` by default, from the registry the
settings name), lazily and at most a few versions at a time; checks of a service without
attribution never import MLflow.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from monitor.check_summary import AttributionSummary, FeatureAttribution
from monitor.config import AttributionConfig
from monitor.drift.loaded import Reference
from monitor.drift.reference import target_column, value_keys
from monitor.records import Service

if TYPE_CHECKING:
    from monitor.store import Store

log = logging.getLogger("mlwatch.drift")
Predict = Callable[[pd.DataFrame], Any]
TOP = 5
"""Features listed in each ranking of the summary."""
MIN_ROWS = 50
"""Labelled rows each side needs before importance means anything."""


class Models(Protocol):
    """Where a check gets the model of a version to compute importance with."""

    def predictor(self, service: Service, version: str) -> Predict:
        """``predict`` of ``service``'s model ``version`` (an exception when it cannot be loaded)."""
        ...


class MlflowModels:
    """Versions of a service's registered model, loaded from MLflow (the last ``size`` kept)."""

    def __init__(self, tracking_uri: str, store: Store | None = None, size: int = 3) -> None:
        self.tracking_uri = tracking_uri
        self.store = store
        self.size = size
        self._loaded: OrderedDict[tuple[str, str], Predict] = OrderedDict()

    def predictor(self, service: Service, version: str) -> Predict:
        """The loaded model's ``predict`` (by ``retrain.serving.ChampionLoader``, as served)."""
        key = (service.name, version)
        if key not in self._loaded:
            from retrain.registry import make_client, model_name
            from retrain.serving import ChampionLoader

            client = make_client(self.tracking_uri, self.store)
            loader = ChampionLoader(client, model_name(service), self.tracking_uri, probabilities=False)
            self._loaded[key] = loader.load(version).predict
            while len(self._loaded) > self.size:
                self._loaded.popitem(last=False)
        self._loaded.move_to_end(key)
        return self._loaded[key]


class _Fitted:
    """A loaded model as scikit-learn's permutation importance wants an estimator."""

    def __init__(self, predict: Predict) -> None:
        self.predict = predict

    def fit(self, *_: Any) -> _Fitted:  # never called: the model is already trained
        return self


def _scorer(task: str) -> Callable[[_Fitted, pd.DataFrame, Any], float]:
    """Higher is better: accuracy on class keys, or minus the mean absolute error."""

    def accuracy(model: _Fitted, features: pd.DataFrame, truth: Any) -> float:
        said = value_keys(pd.Series(np.asarray(model.predict(features)).ravel()))
        return float(np.mean(said.to_numpy(dtype=object) == np.asarray(truth, dtype=object)))

    def negative_mae(model: _Fitted, features: pd.DataFrame, truth: Any) -> float:
        said = np.asarray(model.predict(features), dtype=float).ravel()
        return -float(np.mean(np.abs(said - np.asarray(truth, dtype=float))))

    return accuracy if task == "classification" else negative_mae


def importance_shares(
    predict: Predict,
    features: pd.DataFrame,
    truth: pd.Series,
    task: str,
    config: AttributionConfig,
    *,
    seed: int = 0,
) -> dict[str, float]:
    """Each feature's share of the model's permutation importance on these labelled rows
    (at most ``config.max_rows`` of them, drawn with ``seed``); all 0 when nothing matters."""
    from sklearn.inspection import permutation_importance

    if len(features) > config.max_rows:
        keep = np.random.default_rng(seed).choice(len(features), config.max_rows, replace=False)
        features, truth = features.iloc[np.sort(keep)], truth.iloc[np.sort(keep)]
    features = features.reset_index(drop=True)
    keys = value_keys(truth.reset_index(drop=True)) if task == "classification" else truth.astype(float)
    found = permutation_importance(
        _Fitted(predict), features, keys.to_numpy(), scoring=_scorer(task), n_repeats=config.repeats, random_state=seed
    )
    drops = np.clip(np.nan_to_num(found.importances_mean), 0.0, None)
    total = float(drops.sum())
    return {
        str(name): float(drop / total) if total > 0 else 0.0 for name, drop in zip(features.columns, drops, strict=True)
    }


def attribution_drift(
    reference: Mapping[str, float], current: Mapping[str, float], threshold: float, *, rows: tuple[int, int] = (0, 0)
) -> AttributionSummary:
    """Compare two sets of importance shares: drift when one feature's share moved by more than ``threshold``."""
    names = sorted(set(reference) | set(current))
    if not names:
        return AttributionSummary(
            rank_correlation=1.0, threshold=threshold, reference_rows=rows[0], current_rows=rows[1]
        )
    before = np.array([reference.get(n, 0.0) for n in names])
    after = np.array([current.get(n, 0.0) for n in names])
    moved = np.abs(after - before)
    shifts = dict(zip(names, moved.tolist(), strict=True))
    ranked = sorted(names, key=lambda n: (-reference.get(n, 0.0), n))
    largest = int(np.argmax(moved))
    correlation = _spearman(before, after)
    return AttributionSummary(
        drifted=float(moved[largest]) > threshold,
        max_shift=float(moved[largest]),
        max_shift_feature=names[largest],
        rank_correlation=correlation if np.isfinite(correlation) else 1.0,
        threshold=threshold,
        top_reference=tuple(ranked[:TOP]),
        top_current=tuple(sorted(names, key=lambda n: (-current.get(n, 0.0), n))[:TOP]),
        reference_rows=rows[0],
        current_rows=rows[1],
        features=tuple(FeatureAttribution(n, reference.get(n, 0.0), current.get(n, 0.0), shifts[n]) for n in ranked),
    )


def _spearman(before: np.ndarray, after: np.ndarray) -> float:
    """The rank correlation of two share vectors (1 where either has no spread to rank)."""
    if len(before) < 2 or not before.std() or not after.std():
        return 1.0
    ranks = [pd.Series(values).rank().to_numpy() for values in (before, after)]
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


def skipped(reason: str, threshold: float) -> AttributionSummary:
    """A check where attribution could not be computed, saying why."""
    return AttributionSummary(threshold=threshold, skipped=reason)


def window_attribution(
    service: Service,
    models: Models | None,
    version: str | None,
    reference: Reference | None,
    current: pd.DataFrame,
    truth: pd.Series,
    config: AttributionConfig,
) -> AttributionSummary | None:
    """The attribution drift of one window (None when the service has it off); the reference's
    shares are computed once per version and kept with it (``Reference.kept``)."""
    if not config.enabled:
        return None
    if models is None:
        return skipped("this process has no model registry to load the model from", config.threshold)
    if not version:
        return skipped("the window's predictions name no model version", config.threshold)
    target = target_column(service)
    if reference is None or target not in reference.frame.columns:
        return skipped(f"the reference has no {target!r} labels", config.threshold)
    names = [c for c in current.columns if c in reference.frame.columns]
    labelled = reference.frame[reference.frame[target].notna()]
    if len(labelled) < MIN_ROWS or len(current) < MIN_ROWS:
        fewest = min(len(labelled), len(current))
        return skipped(f"{fewest} labelled rows; attribution needs {MIN_ROWS} on each side", config.threshold)
    try:
        predict = models.predictor(service, version)
        before = reference.kept(
            ("attribution", version, config),
            lambda: importance_shares(predict, labelled[names], labelled[target], service.task, config),
        )
        after = importance_shares(predict, current[names], truth, service.task, config)
    except Exception as exc:  # a model that cannot be loaded or scored: say so in the check
        log.warning("attribution of %s version %s failed", service.name, version, exc_info=True)
        return skipped(f"could not score version {version}: {type(exc).__name__}: {exc}"[:500], config.threshold)
    rows = (min(len(labelled), config.max_rows), min(len(current), config.max_rows))
    return attribution_drift(before, after, config.threshold, rows=rows)
