"""MLflow Projects as trainers: ``mlflow.projects.run`` on the job's run, data window as parameters.

The project is given ``training_data`` (a Parquet file of the training frame), ``target``,
``window_start``, ``window_end`` and ``mode``; it must log its model with artifact name
``model`` in the active run (``mlflow.<flavor>.log_model(model, name="model")``).
"""

from __future__ import annotations

import os
import sys
import tempfile

from retrain.errors import TrainerError
from retrain.trainers.base import TrainedModel, TrainRequest


class ProjectTrainer:
    """Runs an MLflow Project (a directory or git URI with an ``MLproject`` file)."""

    def __init__(self, uri: str, *, env_manager: str = "local") -> None:
        self.uri = uri
        self.env_manager = env_manager

    def train(self, request: TrainRequest) -> TrainedModel:
        """Launch the project synchronously on the job's run."""
        import mlflow
        import mlflow.projects

        if request.run_id is None or request.tracking_uri is None:
            raise TrainerError("an MLflow Project trainer needs the job's run id and tracking URI")
        data = request.data
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "training.parquet")
            data.train.to_parquet(path)
            parameters = {
                "training_data": path,
                "target": data.target,
                "window_start": str(data.window.start),
                "window_end": str(data.window.end),
                "mode": request.mode,
                **{k: str(v) for k, v in request.params.get("project_parameters", {}).items()},
            }
            # mlflow.projects hands the tracking URI to the child through process-global state,
            # and with env_manager "local" runs `python` from PATH: make that this interpreter.
            previous, path = mlflow.get_tracking_uri(), os.environ.get("PATH", "")
            mlflow.set_tracking_uri(request.tracking_uri)
            os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + path
            try:
                mlflow.projects.run(
                    self.uri,
                    entry_point=str(request.params.get("entry_point", "main")),
                    parameters=parameters,
                    env_manager=self.env_manager,
                    run_id=request.run_id,
                    synchronous=True,
                )
            except Exception as exc:  # the project's own failure becomes the job's error
                raise TrainerError(f"MLflow Project {self.uri} failed: {exc}") from exc
            finally:
                mlflow.set_tracking_uri(previous)
                os.environ["PATH"] = path
        logged = {k: v for k, v in parameters.items() if k != "training_data"}
        return TrainedModel(None, "project", {"project_uri": self.uri, **logged}, logged=True)
