"""What every trainer takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from retrain.data import TrainingData


@dataclass(frozen=True)
class TrainRequest:
    """A training task: the data, the mode, parameters and (for fine-tune) the champion."""

    data: TrainingData
    mode: str  # retrain or fine_tune
    params: dict[str, Any]
    champion_path: str | None = None  # local directory of the champion's MLflow model
    run_id: str | None = None
    tracking_uri: str | None = None


@dataclass(frozen=True)
class TrainedModel:
    """A fitted model and the MLflow flavor that saves it; ``logged`` when the trainer already logged it."""

    model: Any
    flavor: str = "sklearn"
    params: dict[str, Any] = field(default_factory=dict)
    logged: bool = False


class Trainer(Protocol):
    """Turns a training request into a fitted model."""

    def train(self, request: TrainRequest) -> TrainedModel:
        """Fit (or continue fitting) a model."""
        ...
