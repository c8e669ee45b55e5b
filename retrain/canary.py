"""The canary: a challenger that answers a share of live requests, guarded against the champion.

``mlwatch serve`` sends ``share`` of its requests to the version the service has in canary
(``routed``: sticky by request id, so a client that repeats an id gets the same version);
the rest stay on the champion. A request the canary fails is answered by the champion, so a
broken canary costs its clients latency, not errors; the failure is logged under the
canary's version with status ``error``, where the guards count it.

The worker judges the canary every cycle (``health``): over the time since the stage started,
its error rate, latency p95 and realized quality against the champion's over the same period
(``CanaryConfig``). A breach rolls it back at once (``retrain.stages``); a canary that held
for ``duration`` is promoted.

    >>> routed("req-42", 0.1)   # the same answer for the same id, True for about 10% of ids
    False
    >>> health(store, service, stage, policy, now=time.time()).breaches
    ('error rate 12.0% against the champion's 0.0% (at most 2.0 points above)',)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from monitor.quality_metrics import metric as quality_metric

if TYPE_CHECKING:
    from monitor.config import RetrainConfig
    from monitor.records import Service, StageRecord, StoredPrediction
    from monitor.store import Store
    from retrain.serving import ChampionLoader, LoadedModel

log = logging.getLogger("mlwatch.serve")
CANARY = "canary"
QUALITY_ROWS = 50_000
"""Rows since the stage started that the quality guard reads (a sample beyond that)."""
_SCALE = float(2**64)


def routed(request_id: str, share: float) -> bool:
    """True when ``request_id`` goes to the canary: a hash of the id below ``share``, so the
    same id always gets the same version and ids split in proportion to ``share``."""
    digest = hashlib.blake2b(request_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE < share


@dataclass(frozen=True, slots=True)
class ServingCanary:
    """The canary ``mlwatch serve`` routes to: its stage, its share and the loaded model."""

    stage_id: int
    share: float
    model: LoadedModel


class CanarySlot:
    """Follows the service's active canary stage for ``mlwatch serve``: loads its version when
    one starts, drops it when the stage ends. ``current`` is replaced by one assignment."""

    def __init__(
        self,
        store: Store,
        service: Service,
        loader: ChampionLoader,
        on_load_error: Callable[[StageRecord, str], None] | None = None,
    ) -> None:
        self.store = store
        self.service = service
        self.loader = loader
        self.on_load_error = on_load_error
        self.current: ServingCanary | None = None

    def refresh(self) -> None:
        """Serve the active canary from the next request on, or none when no canary is active."""
        stage = self.store.active_stage(self.service)
        if stage is None or stage.stage != CANARY:
            if self.current is not None:
                log.warning("canary stage %s ended; every request goes to the champion", self.current.stage_id)
            self.current = None
            return
        if self.current is not None and self.current.stage_id == stage.id:
            return
        try:
            model = self.loader.load(stage.version)
        except Exception as exc:
            self.current = None
            if self.on_load_error is not None:
                self.on_load_error(stage, f"could not load it: {type(exc).__name__}: {exc}")
            return
        share = float(stage.details.get("share") or 0.0)
        self.current = ServingCanary(stage.id, share, model)
        log.warning("version %s serves %.1f%% of requests as canary (stage %s)", stage.version, share * 100, stage.id)


@dataclass(frozen=True, slots=True)
class Side:
    """One version's live numbers over the canary's period."""

    version: str | None
    requests: int
    errors: int
    error_rate: float
    latency_p95_ms: float | None
    labelled: int
    quality: dict[str, float] | None


@dataclass(frozen=True, slots=True)
class Health:
    """Canary and champion over the same period, and the guards the canary breached."""

    canary: Side
    champion: Side
    metric: str
    breaches: tuple[str, ...]
    judged: tuple[str, ...]
    """The guards that had enough rows to be judged: ``error_rate``, ``latency``, ``quality``."""

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the stage record, the audit log and the webhook event."""
        return {
            "canary": asdict(self.canary),
            "champion": asdict(self.champion),
            "metric": self.metric,
            "breaches": list(self.breaches),
            "judged": list(self.judged),
        }


def health(store: Store, service: Service, stage: StageRecord, policy: RetrainConfig, *, now: float) -> Health:
    """The canary of ``stage`` against its champion since the stage started, under ``policy.canary``."""
    from monitor.alerts.sources import StoreMetricSource

    source = StoreMetricSource(store)
    guard, metric = policy.canary, policy.gate.metric
    rows = [r for r in store.sample_window(service, stage.started_at, now, QUALITY_ROWS) if _labelled(r)]
    sides, labelled = [], []
    for version in (stage.version, stage.champion_version):
        traffic = source.traffic(service.name, stage.started_at, now, model_version=version or "")
        mine = [r for r in rows if r.model_version == version]
        labelled.append(mine)
        quality = _quality(mine, service.task) if len(mine) >= guard.min_labelled else None
        p95 = traffic.percentiles_ms.get("p95")
        sides.append(Side(version, traffic.count, traffic.errors, traffic.error_rate, p95, len(mine), quality))
    canary, champion = sides
    breaches, judged = [], []
    if canary.requests >= guard.min_requests and champion.requests >= guard.min_requests:
        judged.append("error_rate")
        if canary.error_rate - champion.error_rate > guard.max_error_rate_increase:
            breaches.append(
                f"error rate {canary.error_rate:.1%} on {canary.requests} requests against the champion's "
                f"{champion.error_rate:.1%} (at most {guard.max_error_rate_increase * 100:.1f} points above)"
            )
        if canary.latency_p95_ms is not None and champion.latency_p95_ms:
            judged.append("latency")
            ratio = canary.latency_p95_ms / champion.latency_p95_ms
            if ratio > guard.max_latency_ratio:
                breaches.append(
                    f"latency p95 {canary.latency_p95_ms:.1f} ms against the champion's "
                    f"{champion.latency_p95_ms:.1f} ms ({ratio:.2f}x, at most {guard.max_latency_ratio:g}x)"
                )
    if canary.quality and champion.quality and metric in canary.quality and metric in champion.quality:
        judged.append("quality")
        drop, confidence = guard.max_quality_drop, policy.gate.confidence
        worse = _worse(labelled[0], labelled[1], service.task, metric, canary, champion, drop, confidence)
        if worse is not None:
            breaches.append(worse)
    return Health(canary, champion, metric, tuple(breaches), tuple(judged))


def _worse(
    ours_rows: Sequence[StoredPrediction],
    theirs_rows: Sequence[StoredPrediction],
    task: str,
    metric: str,
    canary: Side,
    champion: Side,
    drop: float,
    confidence: float,
) -> str | None:
    """The quality breach, if the canary is worse than the champion by more than ``drop`` beyond
    the noise: at the gate's ``confidence``, the whole interval of the difference lies below
    ``-drop``. Their rows differ, and a few hundred labels alone move accuracy by a few points;
    the canary is judged every cycle, so a rule on the point values would roll back a healthy
    canary by chance sooner or later. None when not breached."""
    assert canary.quality is not None and champion.quality is not None
    ours, theirs = canary.quality[metric], champion.quality[metric]
    if quality_metric(metric).improvement(new=ours, old=theirs) >= -drop:
        return None
    said = (
        f"{metric} {ours:.4f} on {canary.labelled} labelled rows "
        f"against the champion's {theirs:.4f} on {champion.labelled}"
    )
    if confidence <= 0:
        return f"{said} (at most {drop:g} worse)"
    from retrain.comparison import compared
    from retrain.significance import difference_interval

    truth, answered, their_truth, they_answered = (
        compared(rows, name, task) for rows in (ours_rows, theirs_rows) for name in ("label", "prediction")
    )
    interval = difference_interval(metric, task, truth, answered, their_truth, they_answered, confidence)
    if interval.high >= -drop:
        return None
    shown = f"[{interval.low:+.4f}, {interval.high:+.4f}]"
    return f"{said} (at most {drop:g} worse; {confidence:.0%} interval of the difference {shown})"


def _labelled(row: StoredPrediction) -> bool:
    return row.has_label and row.label is not None and row.status == "ok" and row.prediction is not None


def _quality(rows: Sequence[StoredPrediction], task: str) -> dict[str, float]:
    """Realized metrics of one version's labelled rows."""
    from retrain.comparison import compared
    from retrain.evaluation import metrics

    return metrics(compared(rows, "label", task), compared(rows, "prediction", task), task)
