"""Trainers: one registry keyed by ``RetrainConfig.trainer``.

``"sklearn"`` (the built-in scikit-learn trainer), ``"project"`` (an MLflow Project at
``project_uri``), or ``"package.module:function"`` (a user trainer taking the training
frame and parameters and returning a fitted model and its MLflow flavor).
"""

from __future__ import annotations

from monitor.config import RetrainConfig
from monitor.errors import ConfigError
from retrain.trainers.base import TrainedModel, Trainer, TrainRequest
from retrain.trainers.entry_point import EntryPointTrainer
from retrain.trainers.project import ProjectTrainer
from retrain.trainers.sklearn import SklearnTrainer

__all__ = ["TrainRequest", "TrainedModel", "Trainer", "make_trainer"]

BUILT_IN = ("sklearn", "project")


def make_trainer(policy: RetrainConfig) -> Trainer:
    """The trainer ``policy.trainer`` names; ConfigError lists the valid choices."""
    if policy.trainer == "sklearn":
        return SklearnTrainer()
    if policy.trainer == "project":
        if not policy.project_uri:
            raise ConfigError(f"retrain[{policy.service}].project_uri: required when trainer is 'project'")
        return ProjectTrainer(policy.project_uri)
    if ":" in policy.trainer:
        return EntryPointTrainer(policy.trainer)
    raise ConfigError(
        f"retrain[{policy.service}].trainer: unknown trainer {policy.trainer!r}; expected one of "
        f"{', '.join(BUILT_IN)} or 'package.module:function'"
    )
