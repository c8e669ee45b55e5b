"""A trained model logged as an MLflow 3 LoggedModel of the job's run, through the injected client.

``mlflow.<flavor>.log_model`` needs the process-global tracking URI and an active run; the
runner writes through one ``MlflowClient`` instead (a remote server, several stores in one
test process), so this does the same steps with the client: create the LoggedModel in the
run's experiment, save the flavor with that model id, upload, record it as the run's
output, and mark it READY (FAILED if any step fails). ``search_logged_models`` then finds
it and ``models:/<model_id>`` loads it.

    >>> logged = log_model(client, run_id, trained, data, params, path)
    >>> version = register(client, tracking_uri, "credit", logged, tags)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from retrain.errors import TrainerError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models import Model

    from retrain.data import TrainingData
    from retrain.trainers import TrainedModel

NAME = "model"
"""The LoggedModel's name in its run (what project trainers must log theirs as, too)."""


def log_model(
    client: MlflowClient,
    run_id: str,
    trained: TrainedModel,
    data: TrainingData,
    params: dict[str, Any],
    path: str,
    tags: dict[str, str] | None = None,
) -> LoggedModel:
    """Log ``trained`` in run ``run_id``; its flavor files are also left at ``path``."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    experiment_id = client.get_run(run_id).info.experiment_id
    text = {k: str(v)[:6000] for k, v in trained.params.items()}
    logged = client.create_logged_model(
        experiment_id, name=NAME, source_run_id=run_id, tags=tags, params=text, model_type=data.task
    )
    try:
        spec = Model(
            artifact_path=logged.artifact_location, model_uuid=logged.model_id, run_id=run_id, model_id=logged.model_id
        )
        save_model(trained, data, path, params, spec)
        client.log_model_artifacts(logged.model_id, path)
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    return client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)


def register(
    client: MlflowClient, tracking_uri: str, model: str, logged: LoggedModel, tags: dict[str, str]
) -> ModelVersion:
    """A new version of ``model`` made from ``logged``, with the source MLflow 3 gives it: ``models:/<model_id>``."""
    source = f"models:/{logged.model_id}"
    # MLflow's SQL registry resolves a models:/ source through a default MlflowClient, i.e.
    # the process-global tracking URI (a TODO in its sqlalchemy_store): point that at ours.
    with _global_tracking_uri(tracking_uri):
        return client.create_model_version(
            model, source, run_id=logged.source_run_id, tags=tags, model_id=logged.model_id
        )


@contextmanager
def _global_tracking_uri(uri: str) -> Iterator[None]:
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it again
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def save_model(
    trained: TrainedModel, data: TrainingData, path: str, params: dict[str, Any], spec: Model | None = None
) -> None:
    """Save with the model's flavor, signature and input example (into ``spec`` when given)."""
    from mlflow.models import infer_signature

    try:
        flavor = importlib.import_module(f"mlflow.{trained.flavor}")
    except ImportError as exc:
        raise TrainerError(f"unknown MLflow flavor {trained.flavor!r} returned by the trainer") from exc
    sample = data.train[list(data.features)].head(500)
    signature = infer_signature(sample, trained.model.predict(sample))
    extra: dict[str, Any] = {} if spec is None else {"mlflow_model": spec}
    if trained.flavor == "sklearn":
        extra.update(sklearn_format(trained.model, str(params.get("serialization_format", "cloudpickle"))))
    if hasattr(flavor, "get_default_pip_requirements"):
        # Inferring requirements starts a Python process that imports the model (10+ s here).
        extra["pip_requirements"] = flavor.get_default_pip_requirements()
    flavor.save_model(trained.model, path, signature=signature, input_example=sample.head(5), **extra)


def sklearn_format(model: Any, name: str) -> dict[str, Any]:
    """``save_model`` options for ``serialization_format``: cloudpickle (default) or skops.

    cloudpickle loads fast (C-level unpickling: the serving process swaps versions without
    stalling requests) and trusts the registry; skops restricts loading to the types of the
    model, at several seconds of import and a slower, pure-Python load.
    """
    if name == "cloudpickle":
        return {"serialization_format": "cloudpickle"}
    if name != "skops":
        raise TrainerError(f"retrain.params.serialization_format: expected cloudpickle or skops, got {name!r}")
    import skops.io

    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return {"serialization_format": "skops", "skops_trusted_types": trusted}
