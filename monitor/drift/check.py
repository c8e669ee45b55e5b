"""Running one check: sample the window, test each column once, measure and estimate quality, store.

    >>> runner = CheckRunner(store)
    >>> record = runner.run(store.get_service("credit"), start, end, trigger="manual")
    >>> record.summary.drifted_features
    ('income',)

The cost is bounded by the service's ``sample_size`` (default 20 000 rows), not by the
window's traffic: rows come from ``Store.sample_columns`` (the uniform sample of
``sample_window``, column by column), and the reference (with its cleaned columns,
baseline and calibration) is loaded once and kept in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from monitor.check_summary import AttributionSummary, CheckSummary, SegmentsSummary
from monitor.config import CheckSettings, Settings
from monitor.drift.attribution import MlflowModels, Models, window_attribution
from monitor.drift.data_quality import data_quality
from monitor.drift.derived import text_drift
from monitor.drift.embeddings import Embedder, MiniLM
from monitor.drift.estimate import estimate, estimate_error
from monitor.drift.loaded import Reference, ReferenceCache
from monitor.drift.multivariate import Detector, MultivariateFound
from monitor.drift.quality import Outcomes, decay, measure
from monitor.drift.reference import PREDICTION, feature_types, target_column
from monitor.drift.segments import record_first_baselines, segment_summary
from monitor.drift.stattests import DriftSpec, column_drift, prepare
from monitor.drift.summary import CheckFindings, ColumnDrift, drifted, empty_summary
from monitor.drift.window import WindowSample, window_sample
from monitor.errors import NotFound, ValidationFailed
from monitor.quality_metrics import metric as quality_metric
from monitor.records import CheckRecord, Service
from monitor.store import Store

MIN_BASELINE_LABELS = 200
"""Labelled rows a window needs to become the baseline of a model version whose reference has no predictions."""
log = logging.getLogger("mlwatch.drift")


class CheckRunner:
    """Runs checks of a service's windows and stores them."""

    @classmethod
    def for_settings(cls, store: Store, settings: Settings) -> CheckRunner:
        """A runner whose attribution drift loads models from the registry ``settings`` name."""
        return cls(store, models=MlflowModels(settings.mlflow_tracking_uri, store))

    def __init__(
        self,
        store: Store,
        *,
        references: ReferenceCache | None = None,
        embedder: Embedder | None = None,
        models: Models | None = None,
    ) -> None:
        self.store = store
        self.references = references or ReferenceCache(store)
        self.embedder = embedder or MiniLM()  # loaded at the first check of a service with text embeddings
        self.models = models
        """Where attribution drift loads a version's model (``MlflowModels``); without one, a
        service with ``attribution.enabled`` has it skipped, with that reason, in its checks."""

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
        limit = sample_size or CheckSettings.of(service).sample_size
        window = window_sample(self.store.sample_columns(service, start, end, limit))
        reference, problem = self._reference(service, window.model_version)
        if not window.rows:
            summary = empty_summary(reference.rows if reference else 0)
            return self._store(service, start, end, window, trigger, summary, {"features": []}, "no_data", problem)
        try:
            target = self._target(service, reference)
            found = evaluate(service, window, reference, embedder=self.embedder, target=target, models=self.models)
        except ValidationFailed as exc:  # e.g. a drift_method Evidently does not know: say so in the check
            summary = replace(empty_summary(reference.rows if reference else 0), rows=window.rows)
            return self._store(service, start, end, window, trigger, summary, {"features": []}, "error", str(exc))
        if reference is not None and found.summary.baseline is None:
            found = self._first_baseline(service, window, reference, found)
        if reference is not None:
            record_first_baselines(self.store, service, window, reference)
        status = "error" if reference is None else "ok"
        return self._store(service, start, end, window, trigger, found.summary, found.results(), status, problem)

    def _first_baseline(
        self, service: Service, window: WindowSample, reference: Reference, found: CheckFindings
    ) -> CheckFindings:
        """Without predictions in the reference, the first well-labelled window sets the version's baseline."""
        quality = found.summary.quality
        if quality is None or len(window.labelled()) < MIN_BASELINE_LABELS:
            return found
        version = window.model_version or ""
        baseline = self.store.set_reference_baseline(service, reference.version, version, dict(quality))
        reference.stats.setdefault("baselines", {})[version] = baseline
        log.info("service %s: baseline of model version %r set from a labelled window", service.name, version)
        return with_baseline(found, baseline, self._target(service, reference))

    def _target(self, service: Service, reference: Reference | None) -> dict[str, float] | None:
        """The quality the service must keep: its configured ``quality_target``, else, for a
        version checked against a reference of its own (a retrained model's training data), the
        service's first baseline (``service_first_baseline``); None for the uploaded reference."""
        configured = CheckSettings.of(service).quality_target
        if configured:
            return configured
        if reference is None or not reference.version:
            return None
        return service_first_baseline(self.store, service)

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
        summary: CheckSummary,
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


def evaluate(
    service: Service,
    window: WindowSample,
    reference: Reference | None,
    *,
    embedder: Embedder | None = None,
    target: Mapping[str, float] | None = None,
    models: Models | None = None,
) -> CheckFindings:
    """Everything a check finds in one window sample (drift needs a reference; quality needs
    labels); decay is measured against the version's baseline raised to ``target`` (see ``with_baseline``)."""
    settings = CheckSettings.of(service)
    types = feature_types(service, reference.frame if reference is not None else window.features)
    features, derived, skipped = _feature_drift(service, window, reference, types, settings, embedder or MiniLM())
    share = sum(f.drifted for f in features) / len(features) if features else 0.0
    labelled = window.labelled()
    quality = measure(service.task, labelled) if len(labelled) else None
    estimated = _estimate(service, window, reference)
    prediction = _prediction_drift(service, window, reference)
    label_drift = _target_drift(service, labelled, reference)
    joint = _multivariate(window, reference, types, settings)
    summary = CheckSummary(
        rows=window.rows,
        reference_rows=reference.rows if reference is not None else 0,
        drift_share=share,
        dataset_drift=bool(features) and share >= settings.drift_share,
        drifted_features=drifted(features),
        prediction_drift=prediction.verdict() if prediction is not None else None,
        target_drift=label_drift.verdict() if label_drift is not None else None,
        label_coverage=window.label_coverage,
        quality=quality,
        estimated_quality=estimated,
        estimate_error=estimate_error(estimated, quality),
        data_quality=data_quality(window.features, types, reference.stats if reference is not None else {}),
        skipped_features=skipped,
        drifted_derived=drifted(derived),
        multivariate=joint.summary() if joint is not None else None,
        segments=_segments(service, window, reference, types, features, settings),
        attribution=_attribution(service, window, reference, types, models, settings),
    )
    found = CheckFindings(summary, tuple(features), tuple(derived))
    return with_baseline(found, reference.baseline(window.model_version) if reference is not None else None, target)


def with_baseline(
    found: CheckFindings, baseline: Mapping[str, float] | None, target: Mapping[str, float] | None = None
) -> CheckFindings:
    """``found`` compared with ``baseline`` raised to ``target`` (per metric, the better of the
    two): the realized and the estimated decay. A model whose own holdout was mediocre is so
    still judged against the quality the service must keep."""
    summary = found.summary
    bar = raised(baseline, target)
    compared = replace(
        summary,
        baseline=bar,
        target=dict(target) if target and baseline is not None else None,
        decay=decay(bar, summary.quality),
        estimated_decay=decay(bar, summary.estimated_quality),
    )
    return replace(found, summary=compared)


def raised(baseline: Mapping[str, float] | None, target: Mapping[str, float] | None) -> dict[str, float] | None:
    """``baseline`` with each metric replaced by ``target``'s where the target is better (None stays None)."""
    if baseline is None:
        return None
    out = dict(baseline)
    for name, value in (target or {}).items():
        if name not in out or quality_metric(name).improvement(new=value, old=out[name]) > 0:
            out[name] = value
    return out


def service_first_baseline(store: Store, service: Service) -> dict[str, float] | None:
    """The first quality baseline the service had: that of the uploaded reference (its own, or
    of the first version checked against it), else, where every version was checked against a
    reference of its own (the first model trained by mlwatch, as in the demo), the baseline of
    the earliest version reference that has one; None before any baseline."""
    try:
        found = first_baseline(store.reference_stats(service, ""))
    except NotFound:
        found = None
    if found is not None:
        return found
    versions = sorted(
        (r for r in store.list_references(service) if r.model_version), key=lambda r: (r.created_at, r.model_version)
    )
    for info in versions:
        found = first_baseline(store.reference_stats(service, info.model_version))
        if found is not None:
            return found
    return None


def first_baseline(stats: Mapping[str, Any]) -> dict[str, float] | None:
    """The first quality baseline a reference's statistics hold: its own (from predictions it
    carries), else that of the earliest model version whose labelled window set one."""
    own = stats.get("baseline")
    if own:
        return dict(own)
    baselines: Mapping[str, Mapping[str, float]] = stats.get("baselines") or {}
    if not baselines:
        return None
    earliest = min(baselines, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
    return dict(baselines[earliest])


def _feature_drift(
    service: Service,
    window: WindowSample,
    reference: Reference | None,
    types: dict[str, str],
    settings: CheckSettings,
    embedder: Embedder,
) -> tuple[list[ColumnDrift], list[ColumnDrift], dict[str, str]]:
    """The verdict of each feature both sides have values of, those of the features derived from
    text features, and why each other one has none."""
    if reference is None:
        return [], [], {}
    found, derived, skipped = [], [], {}
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
        if kind == "text" and current is not None:
            more, unmeasured = text_drift(name, reference, prepare(current, kind), settings.text, embedder)
            derived += more
            skipped.update(unmeasured)
    return found, derived, skipped


def _multivariate(
    window: WindowSample, reference: Reference | None, types: dict[str, str], settings: CheckSettings
) -> MultivariateFound | None:
    """The joint drift of the window's inputs, when the service has it enabled."""
    joint = settings.multivariate
    if reference is None or not joint.enabled or not joint.methods:
        return None
    key = ("multivariate", tuple(sorted(types.items())), joint)
    detector = reference.kept(key, lambda: Detector(reference.frame, types, joint))
    return detector.detect(window.features)


def _segments(
    service: Service,
    window: WindowSample,
    reference: Reference | None,
    types: dict[str, str],
    features: list[ColumnDrift],
    settings: CheckSettings,
) -> SegmentsSummary | None:
    """Drift, data quality and quality per segment, and the cohorts worst first (``monitor.drift.segments``)."""
    calibrator = reference.calibrator(service) if reference is not None and service.task == "classification" else None
    return segment_summary(service, window, reference, types, features, settings, calibrator)


def _attribution(
    service: Service,
    window: WindowSample,
    reference: Reference | None,
    types: dict[str, str],
    models: Models | None,
    settings: CheckSettings,
) -> AttributionSummary | None:
    """How the model's reliance on each feature moved (``monitor.drift.attribution``), when enabled."""
    if not settings.attribution.enabled:
        return None
    keep = window.labelled_mask
    current = window.features.loc[keep, [c for c in types if c in window.features.columns]]
    return window_attribution(
        service, models, window.model_version, reference, current, window.labels[keep], settings.attribution
    )


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
