"""Where a model's data came from, as MLflow dataset inputs: the mlwatch store window.

A retrain reads the service's reference and a window of labeled predictions from mlwatch's
store, so each dataset a run logs names that source (``source_type`` ``mlwatch_store``),
not the code that happened to build the frame; the MLflow UI and ``run.inputs`` then show
which service, window and split a model was fitted and scored on.

    >>> logged = datasets(data, settings.store_url, "credit")
    >>> client.log_inputs(run_id, datasets=dataset_inputs(logged))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlflow.data.dataset_source import DatasetSource

if TYPE_CHECKING:
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.entities import DatasetInput

    from retrain.data import TrainingData

SOURCE_TYPE = "mlwatch_store"
CONTEXTS = ("training", "evaluation")


class StoreWindowSource(DatasetSource):
    """Rows of one service in mlwatch's store: its reference plus the labeled predictions of a window."""

    def __init__(self, store: str, service: str, split: str, start: float, end: float, rows: dict[str, int]) -> None:
        self.store = store
        self.service = service
        self.split = split
        self.start = start
        self.end = end
        self.rows = dict(rows)

    @staticmethod
    def _get_source_type() -> str:
        return SOURCE_TYPE

    def load(self) -> Any:
        """Not loadable from MLflow: the rows live in mlwatch's store, which MLflow cannot open."""
        raise NotImplementedError(
            f"the {self.split} rows of service {self.service!r} are in the mlwatch store {self.store}; "
            f"read them there (reference plus labeled predictions from {self.start} to {self.end})"
        )

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False  # made by mlwatch from its own records, never parsed from a string

    @classmethod
    def _resolve(cls, raw_source: Any) -> StoreWindowSource:
        raise NotImplementedError("a StoreWindowSource is built by mlwatch, not resolved from a string")

    def to_dict(self) -> dict[str, Any]:
        """The source as MLflow stores it (JSON)."""
        return {
            "uri": f"mlwatch://{self.service}/{self.split}?start={self.start}&end={self.end}",
            "store": self.store,
            "service": self.service,
            "split": self.split,
            "window_start": self.start,
            "window_end": self.end,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> StoreWindowSource:
        """The source back from its stored JSON."""
        return cls(
            source_dict["store"],
            source_dict["service"],
            source_dict["split"],
            float(source_dict["window_start"]),
            float(source_dict["window_end"]),
            dict(source_dict.get("rows", {})),
        )


def datasets(data: TrainingData, store_url: str, service: str) -> dict[str, PandasDataset]:
    """The training and evaluation frames of ``data`` as MLflow datasets sourced from the store window."""
    from mlflow.data.pandas_dataset import from_pandas

    window = data.window
    store = redacted(store_url)
    rows = {"reference": window.reference_rows, "production": window.production_rows}
    splits = {
        "training": (data.train, StoreWindowSource(store, service, "training", window.start, window.end, rows)),
        "evaluation": (
            data.holdout,
            StoreWindowSource(
                store,
                service,
                f"holdout-{window.holdout_source}",
                window.start,
                window.end,
                {window.holdout_source: window.holdout_rows},
            ),
        ),
    }
    return {
        context: from_pandas(frame, source=source, targets=data.target, name=f"{service}-{context}")
        for context, (frame, source) in splits.items()
    }


def dataset_inputs(by_context: dict[str, PandasDataset]) -> list[DatasetInput]:
    """Run inputs of the datasets, each tagged with its context (training or evaluation)."""
    from mlflow.entities import DatasetInput, InputTag

    return [
        DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])
        for context, dataset in by_context.items()
    ]


def redacted(url: str) -> str:
    """``url`` without its password, fit to be written into MLflow."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a database URL: keep only what follows any credentials
        return url.rsplit("@", 1)[-1]
