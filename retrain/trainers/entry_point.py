"""User trainers: ``package.module:function(frame, params) -> (model, flavor)``.

``frame`` is the training frame (features, the target and an ``mlwatch_weight`` column);
``params`` holds the policy's ``params`` plus ``target``, ``features``, ``categorical``,
``task``, ``mode`` and, in fine-tune mode, ``champion_path`` (the champion's MLflow model
directory). ``flavor`` names an MLflow flavor module (``"sklearn"``, ``"xgboost"``, ...).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from monitor.errors import ConfigError
from retrain.errors import TrainerError
from retrain.trainers.base import TrainedModel, TrainRequest


class EntryPointTrainer:
    """Calls a user function found by its ``module:function`` entry point."""

    def __init__(self, entry_point: str) -> None:
        self.entry_point = entry_point

    def train(self, request: TrainRequest) -> TrainedModel:
        """Call the function and check what it returned."""
        fn = self._resolve()
        data = request.data
        params = {
            **request.params,
            "target": data.target,
            "features": list(data.features),
            "categorical": list(data.categorical),
            "task": data.task,
            "mode": request.mode,
            "champion_path": request.champion_path,
        }
        try:
            returned = fn(data.train.copy(), params)
        except Exception as exc:  # the user's code: report what it raised, as the job's error
            raise TrainerError(f"trainer {self.entry_point} raised {type(exc).__name__}: {exc}") from exc
        if not (isinstance(returned, tuple) and len(returned) == 2 and isinstance(returned[1], str)):
            raise TrainerError(f"trainer {self.entry_point} must return (model, flavor), got {type(returned).__name__}")
        return TrainedModel(returned[0], returned[1], {"trainer": self.entry_point})

    def _resolve(self) -> Callable[..., Any]:
        module, _, name = self.entry_point.partition(":")
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"retrain.trainer: cannot load {self.entry_point!r} ({exc}); expected 'package.module:function'"
            ) from exc
        if not callable(fn):
            raise ConfigError(f"retrain.trainer: {self.entry_point!r} is not a function")
        return fn
