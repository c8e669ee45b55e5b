"""The training frame: the service's reference data plus recent labeled production data.

Production rows come from the store (``Store.sample_window``: a bounded uniform sample of
the window, capped by ``RetrainConfig.max_production_rows``), weighted by recency when
``recency_half_life`` is set. The most recent labeled rows are held out so that the
challenger and the champion are scored on the same data; the window is recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from monitor.config import RetrainConfig
from monitor.errors import NotFound
from monitor.records import Service, StoredPrediction
from monitor.store import Store
from retrain.errors import TrainerError

if TYPE_CHECKING:
    import pandas as pd

WEIGHT = "mlwatch_weight"
"""Column of the training frame holding each row's sample weight."""
MIN_HOLDOUT = 20


@dataclass(frozen=True, slots=True)
class DataWindow:
    """Where the training data came from (tagged on the run as ``mlwatch.data_window``)."""

    start: float
    end: float
    reference_rows: int
    production_rows: int
    holdout_rows: int
    holdout_source: str  # production or reference

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for JSON and MLflow tags."""
        return asdict(self)


@dataclass(frozen=True)
class TrainingData:
    """Train and held-out frames with the column roles a trainer needs."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    task: str
    window: DataWindow


def build_training_data(
    store: Store, service: Service, policy: RetrainConfig, now: float, *, since: float | None = None
) -> TrainingData:
    """Reference plus labeled production rows of the last ``policy.data_window`` seconds or,
    for a retrain that reacts to an episode, from ``since`` (its onset, ``retrain.onset``) on.

    From the onset, not from the later of the two: the episode's retrain waited for
    ``min_labelled_rows`` labelled rows after the onset, and with labels that come later than
    ``data_window`` (two windows late, for a two-window data window) none of those rows lay
    inside it; every retrain then trained on the reference alone and was rejected as no better.
    """
    import pandas as pd

    target = _target(service)
    reference = _reference(store, service, target, policy.reference_weight)
    start = now - policy.data_window if since is None else since
    rows = store.sample_window(service, start, now, policy.max_production_rows) if policy.max_production_rows else []
    production = _production_frame(rows, target, now, policy.recency_half_life)
    features, categorical = _columns(service, reference, production, target)
    holdout_fraction = float(policy.params.get("holdout_fraction", 0.3))
    reference, production, holdout, holdout_source = _split(reference, production, holdout_fraction)
    train = pd.concat([reference, production], ignore_index=True) if len(production) else reference
    if len(train) < 2 or len(holdout) == 0:
        raise TrainerError(
            f"service {service.name!r} has too little labeled data to retrain ({len(train)} training rows, "
            f"{len(holdout)} held out); upload reference data with its {target!r} column or send labels"
        )
    columns = [*features, target]
    window = DataWindow(start, now, len(reference), len(production), len(holdout), holdout_source)
    return TrainingData(
        train=_typed(train.reindex(columns=[*columns, WEIGHT]), features, categorical),
        holdout=_typed(holdout.reindex(columns=columns), features, categorical),
        features=features,
        categorical=categorical,
        target=target,
        task=service.task,
        window=window,
    )


def _target(service: Service) -> str:
    if not service.target:
        raise TrainerError(
            f"service {service.name!r} has no target (label column); set `target:` in its config to retrain"
        )
    return service.target


def _reference(store: Store, service: Service, target: str, weight: float = 1.0) -> pd.DataFrame:
    import pandas as pd

    try:
        frame, _ = store.get_reference(service)
    except NotFound:
        return pd.DataFrame({target: [], WEIGHT: []})
    if target not in frame.columns:
        return pd.DataFrame({target: [], WEIGHT: []})
    frame = frame[frame[target].notna()].reset_index(drop=True)
    frame[WEIGHT] = weight
    frame["mlwatch_ts"] = 0.0
    return frame


def _production_frame(rows: list[StoredPrediction], target: str, now: float, half_life: float | None) -> pd.DataFrame:
    import pandas as pd

    labeled = [r for r in rows if r.has_label and r.label is not None]
    records = [{**r.features, target: r.label, "mlwatch_ts": r.ts} for r in labeled]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({target: [], "mlwatch_ts": []})
    age = now - frame["mlwatch_ts"].astype(float)
    frame[WEIGHT] = 0.5 ** (age / half_life) if half_life else 1.0
    return frame


def _columns(
    service: Service, reference: pd.DataFrame, production: pd.DataFrame, target: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if service.features:
        usable = [f for f in service.features if f.type in ("numerical", "categorical")]
        return tuple(f.name for f in usable), tuple(f.name for f in usable if f.type == "categorical")
    skip = {target, WEIGHT, "mlwatch_ts", "prediction", "request_id", "timestamp"}
    names = [c for c in dict.fromkeys([*reference.columns, *production.columns]) if c not in skip]
    frame = reference if len(reference) else production
    categorical = [c for c in names if c in frame.columns and not _is_numeric(frame[c])]
    return tuple(names), tuple(categorical)


def _is_numeric(column: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(column)) and not pd.api.types.is_bool_dtype(column)


def _split(
    reference: pd.DataFrame, production: pd.DataFrame, fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """Hold out the most recent labeled production rows, else a random slice of the reference.

    Returns (reference, production, holdout, where the holdout came from); held-out rows are
    removed from the training part.
    """
    held = int(len(production) * fraction)
    if held >= MIN_HOLDOUT:
        ordered = production.sort_values("mlwatch_ts", kind="stable").reset_index(drop=True)
        return reference, ordered.iloc[: len(ordered) - held], ordered.iloc[len(ordered) - held :], "production"
    holdout = reference.sample(frac=fraction, random_state=0) if len(reference) else reference
    return reference.drop(index=holdout.index), production, holdout, "reference"


def _typed(frame: pd.DataFrame, features: tuple[str, ...], categorical: tuple[str, ...]) -> pd.DataFrame:
    """Categorical features as category keys and the others as floats, so train, holdout and serving agree."""
    out = frame.reset_index(drop=True).copy()
    for column in features:
        if column in categorical:
            out[column] = category_keys(out[column])
        else:
            out[column] = out[column].astype("float64")
    return out


def category_keys(column: pd.Series) -> pd.Series:
    """The text a model sees for each category: the drift checks' key, missing values as None.

    Integer codes (zip codes, levels) arrive as ``3``, ``3.0`` (a column with gaps) or
    ``"3"``; all three are ``"3"`` here, in training and in ``mlwatch serve`` alike, so a
    model accepts a category typed any way the service's schema allows.
    """
    import pandas as pd

    from monitor.drift.reference import value_keys

    present = column.notna()
    keys = pd.Series(None, index=column.index, dtype=object)
    if present.any():
        keys[present] = value_keys(column[present])
    return keys
