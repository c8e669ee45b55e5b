"""The oracle a scenario is judged against: the loop's own trainer, fitted on the new data.

It is the built-in scikit-learn trainer (``retrain.trainers.sklearn``) with the policy's
default estimator, as every retrain of the demo uses, trained in the run on fresh draws of
the population of the windows it is scored on, and scored on the very rows the served model
answered in those windows. A loop that reaches it has learned all that one retrain could.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.demo.data import FEATURES, TARGET
from retrain.data import WEIGHT, DataWindow, TrainingData
from retrain.trainers.base import TrainRequest
from retrain.trainers.sklearn import SklearnTrainer


def fit_oracle(train: pd.DataFrame) -> object:
    """The trainer's model fitted on ``train`` (features and the ``default`` label), all rows weighing 1."""
    frame = train.assign(**{WEIGHT: 1.0})
    data = TrainingData(
        train=frame,
        holdout=frame.iloc[:0],
        features=tuple(name for name, _ in FEATURES),
        categorical=tuple(name for name, kind in FEATURES if kind == "categorical"),
        target=TARGET,
        task="classification",
        window=DataWindow(0.0, 0.0, 0, len(frame), 0, "production"),
    )
    return SklearnTrainer().train(TrainRequest(data, "retrain", {})).model


def accuracy(model: object, rows: pd.DataFrame) -> float:
    """Share of ``rows`` whose label ``model`` predicts."""
    predicted = np.asarray(model.predict(rows[[name for name, _ in FEATURES]]))  # type: ignore[attr-defined]
    return float(np.mean(predicted == rows[TARGET].to_numpy()))
