"""Running one check: sample the window, test each column once, measure and estimate quality, store.

    >>> runner = CheckRunner(store)
    >>> record = runner.run(store.get_service("credit"), start, end, trigger="manual")
    >>> record.summary["drifted_features"]
    ['income']

The cost is bounded by the service's ``sample_size`` (default 20 000 rows), not by the
window's traffic: rows come from ``Store.sample_columns`` (the uniform sample of
``sample_window``, column by column), and the reference (with its cleaned columns,
baseline and calibration) is loaded once and kept in memory.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pandas as pd

from monitor.drift.data_quality import data_quality
from monitor.drift.estimate import estimate, estimate_error
from monitor.drift.loaded import Reference, ReferenceCache
from monitor.drift.quality import Outcomes, decay, measure
from monitor.drift.reference import PREDICTION, feature_types, target_column
from monitor.drift.stattests import DriftSpec, column_drift, prepare
from monitor.drift.summary import CheckSummary, ColumnDrift, empty_summary
from monitor.drift.window import WindowSample, window_sample
from monitor.errors import NotFound, ValidationFailed
from monitor.records import CheckRecord, Service
from monitor.store import Store

DEFAULT_SAMPLE_SIZE = 20_000
DEFAULT_DRIFT_SHARE = 0.5
"""A window has dataset drift when at least this share of features drifted (Evidently's default)."""
MIN_BASELINE_LABELS = 200
"""Labelled rows a window needs to become the baseline of a model version whose reference has no predictions."""
log = logging.getLogger("mlwatch.drift")


class CheckRunner:
    """Runs checks of a service's windows and stores them."""

    def __init__(self, store: Store, *, references: ReferenceCache | None = None) -> None:
        self.store = store
        self.references = references or ReferenceCache(store)

    def run(
        self,
        service: Service,
        start: float,
        end: float,
        *,
        trigger: str = "manual",
        sample_size: int | None = None,
    ) -> CheckRecord:
        """Check the window ``[start, end)`` of ``service`` and store the result."""
        limit = sample_size or int(service.config.get("sample_size", DEFAULT_SAMPLE_SIZE))
        window = window_sample(self.store.sample_columns(service, start, end, limit))
        reference, problem = self._reference(service, window.model_version)
        if not window.rows:
            summary = empty_summary(reference.rows if reference else 0)
            return self._store(service, start, end, window, trigger, summary, {"features": []}, "no_data", problem)
        try:
            found = evaluate(service, window, reference)
        except ValidationFailed as exc:  # e.g. a drift_method Evidently does not know: say so in the check
            summary = {**empty_summary(reference.rows if reference else 0), "rows": window.rows}
            return self._store(service, start, end, window, trigger, summary, {"features": []}, "error", str(exc))
        if reference is not None and found.baseline is None:
            found = self._first_baseline(service, window, reference, found)
        status = "error" if reference is None else "ok"
        return self._store(service, start, end, window, trigger, found.summary(), found.results(), status, problem)

    def _first_baseline(
        self, service: Service, window: WindowSample, reference: Reference, found: CheckSummary
    ) -> CheckSummary:
        """Without predictions in the reference, the first well-labelled window sets the version's baseline."""
        if found.quality is None or len(window.labelled()) < MIN_BASELINE_LABELS:
            return found
        version = window.model_version or ""
        baseline = self.store.set_reference_baseline(service, reference.version, version, found.quality)
        reference.stats.setdefault("baselines", {})[version] = baseline
        log.info("service %s: baseline of model version %r set from a labelled window", service.name, version)
        return with_baseline(found, baseline)

    def _reference(self, service: Service, version: str | None) -> tuple[Reference | None, str | None]:
        try:
            return self.references.get(service, version), None
        except NotFound as exc:
            return None, str(exc)

    def _store(
        self,
        service: Service,
        start: float,
        end: float,
        window: WindowSample,
        trigger: str,
        summary: dict[str, Any],
        results: dict[str, Any],
        status: str,
        error: str | None,
    ) -> CheckRecord:
        check_id = self.store.add_check(
            service,
            window_start=start,
            window_end=end,
            model_version=window.model_version,
            status=status,
            trigger=trigger,
            summary=summary,
            results=results,
            error=error if status != "no_data" else None,
        )
        return self.store.get_check(check_id)


def evaluate(service: Service, window: WindowSample, reference: Reference | None) -> CheckSummary:
    """Everything a check finds in one window sample (drift needs a reference; quality needs labels)."""
    types = feature_types(service, reference.frame if reference is not None else window.features)
    features, skipped = _feature_drift(service, window, reference, types)
    drifted = sum(f.drifted for f in features)
    share = drifted / len(features) if features else 0.0
    labelled = window.labelled()
    quality = measure(service.task, labelled) if len(labelled) else None
    estimated = _estimate(service, window, reference)
    found = CheckSummary(
        rows=window.rows,
        reference_rows=reference.rows if reference is not None else 0,
        features=tuple(features),
        drift_share=share,
        dataset_drift=bool(features) and share >= float(service.config.get("drift_share", DEFAULT_DRIFT_SHARE)),
        prediction_drift=_prediction_drift(service, window, reference),
        target_drift=_target_drift(service, labelled, reference),
        label_coverage=window.label_coverage,
        quality=quality,
        estimated_quality=estimated,
        estimate_error=estimate_error(estimated, quality),
        data_quality=data_quality(window.features, types, reference.stats if reference is not None else {}),
        skipped=skipped,
    )
    return with_baseline(found, reference.baseline(window.model_version) if reference is not None else None)


def with_baseline(found: CheckSummary, baseline: dict[str, float] | None) -> CheckSummary:
    """``found`` compared with ``baseline``: the realized and the estimated decay."""
    return replace(
        found,
        baseline=baseline,
        decay=decay(baseline, found.quality),
        estimated_decay=decay(baseline, found.estimated_quality),
    )


def _feature_drift(
    service: Service, window: WindowSample, reference: Reference | None, types: dict[str, str]
) -> tuple[list[ColumnDrift], dict[str, str]]:
    """The verdict of each feature both sides have values of, and why each other one has none."""
    if reference is None:
        return [], {}
    found, skipped = [], {}
    for name, kind in types.items():
        feature = service.feature(name)
        method, threshold = (feature.drift_method, feature.drift_threshold) if feature else (None, None)
        spec = DriftSpec(name, kind, method, threshold)
        current = window.features[name] if name in window.features.columns else None
        drift, why = _tested(spec, reference, current)
        if drift is not None:
            found.append(drift)
        elif why:
            skipped[name] = why
    return found, skipped


def _tested(spec: DriftSpec, reference: Reference, current: pd.Series | None) -> tuple[ColumnDrift | None, str]:
    """The drift of one feature, or why it cannot be tested (a column missing or without values,
    texts without a vocabulary)."""
    column = reference.column(spec.name, spec.type)
    if column is None:
        return None, "the reference has no such column"
    if current is None:
        return None, "no prediction of the window has this feature"
    prepared = prepare(current, spec.type)
    if column.empty:
        return None, f"the reference has no {spec.type} value in this column"
    if prepared.empty:
        return None, f"none of the window's {len(current)} sampled values is a {spec.type} value (all missing?)"
    try:
        return column_drift(spec, column, prepared, reference.test(spec, column, prepared)), ""
    except ValueError as error:
        # Evidently's text drift fits a TF-IDF vocabulary on both sides, and scikit-learn raises
        # ValueError ("empty vocabulary", "max_df corresponds to < documents than min_df") on a
        # few short or stop-word values: that feature cannot be tested, the others still are.
        if spec.type != "text":
            raise
        return None, f"Evidently cannot compare these texts: {error}"


def _drift(spec: DriftSpec, reference: Reference, current: pd.Series) -> ColumnDrift | None:
    return _tested(spec, reference, current)[0]


def _outcome_kind(service: Service) -> str:
    return "categorical" if service.task == "classification" else "numerical"


def _prediction_drift(service: Service, window: WindowSample, reference: Reference | None) -> ColumnDrift | None:
    if reference is None:
        return None
    return _drift(DriftSpec(PREDICTION, _outcome_kind(service)), reference, window.predictions)


def _target_drift(service: Service, labelled: Outcomes, reference: Reference | None) -> ColumnDrift | None:
    if reference is None or not len(labelled):
        return None
    return _drift(DriftSpec(target_column(service), _outcome_kind(service)), reference, labelled.truth)


def _estimate(service: Service, window: WindowSample, reference: Reference | None) -> dict[str, float] | None:
    if service.task != "classification":
        return None
    calibrator = reference.calibrator(service) if reference is not None else None
    found = estimate(window.predictions, window.proba, calibrator)
    return None if found is None else found.metrics()
