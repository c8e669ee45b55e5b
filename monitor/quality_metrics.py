"""What each model-quality metric means: which way is better, how it is shown, which tasks have it.

One registry, keyed by the stable name that checks store, gates name and rules select
(``f1``, ``rmse``, ...). The promotion gate (``retrain.evaluation``), quality decay
(``monitor.drift.quality``) and the dashboard all read the direction from here, so that a
lower-is-better metric such as ``mape`` or ``log_loss`` counts as better when it falls in
every one of them. Standard library only: every layer, the store included, may import it.

    >>> metric("mape").higher_is_better
    False
    >>> metric("rmse").improvement(new=0.5, old=1.0)  # positive: the new value is better
    0.5
"""

from __future__ import annotations

from dataclasses import dataclass

CLASSIFICATION = "classification"
REGRESSION = "regression"


@dataclass(frozen=True, slots=True)
class QualityMetric:
    """One quality metric: its stored name, whether higher values are better, its label, its tasks."""

    name: str
    higher_is_better: bool
    display_name: str
    tasks: frozenset[str]

    def improvement(self, new: float, old: float) -> float:
        """How much better ``new`` is than ``old``: positive when better, whichever way the metric runs."""
        return new - old if self.higher_is_better else old - new


def _metrics(task: str, *entries: tuple[str, bool, str]) -> list[QualityMetric]:
    return [QualityMetric(name, higher, shown, frozenset({task})) for name, higher, shown in entries]


METRICS: dict[str, QualityMetric] = {
    m.name: m
    for m in [
        *_metrics(
            CLASSIFICATION,
            ("accuracy", True, "Accuracy"),
            ("precision", True, "Precision"),
            ("recall", True, "Recall"),
            ("f1", True, "F1"),
            ("roc_auc", True, "ROC AUC"),
            ("log_loss", False, "Log loss"),
        ),
        *_metrics(
            REGRESSION,
            ("mae", False, "MAE"),
            ("rmse", False, "RMSE"),
            ("mape", False, "MAPE"),
            ("r2", True, "R²"),
        ),
    ]
}
"""Every metric a check measures or a gate scores, by name."""


def metric(name: str) -> QualityMetric:
    """The metric called ``name``; ValueError listing the known ones otherwise."""
    found = METRICS.get(name)
    if found is None:
        raise ValueError(f"unknown quality metric {name!r}; expected one of {', '.join(METRICS)}")
    return found


def display_name(name: str) -> str:
    """How ``name`` is labelled on screen (the name itself for a metric the registry does not know)."""
    found = METRICS.get(name)
    return found.display_name if found is not None else name


def of_task(task: str) -> tuple[str, ...]:
    """Names of the metrics that apply to ``task`` (``classification`` or ``regression``), in registry order."""
    return tuple(name for name, m in METRICS.items() if task in m.tasks)
