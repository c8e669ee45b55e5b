"""User trainers (entry points) used by the tests."""

from __future__ import annotations

from typing import Any

import pandas as pd


def logistic(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[Any, str]:
    """A plain logistic regression on the numerical features."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    numerical = [f for f in params["features"] if f not in params["categorical"]]
    model = Pipeline([("cols", ColumnTransformer([("n", "passthrough", numerical)])), ("lr", LogisticRegression())])
    return model.fit(frame[params["features"]], frame[params["target"]]), "sklearn"


def broken(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[Any, str]:
    """A trainer that fails."""
    raise RuntimeError("disk on fire")
