"""Model versions for the shadow tests and benchmark, saved with MLflow and registered as ``credit``.

Versions: 1 a one-split tree, 2 a logistic regression that is right far more often, 3 a
model that raises on every call (same signature), 4 one that takes other columns, 5 one
that ends its process on every call (as a segfault would), 6 one that answers 0 for every
row after 250 ms (a slow version, same signature), 7 one whose every call never returns (a
hung version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from retrain.registry import make_client

CRASHER = """
import mlflow.pyfunc
from mlflow.models import set_model


class Crasher(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("shadow model exploded")


set_model(Crasher())
"""
KILLER = """
import os

import mlflow.pyfunc
from mlflow.models import set_model


class Killer(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        os._exit(70)  # as a segfault would: the process is gone, no exception to catch


set_model(Killer())
"""
SLEEPER = """
import time

import mlflow.pyfunc
from mlflow.models import set_model


class Sleeper(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        time.sleep(0.25)
        return [0] * len(model_input)


set_model(Sleeper())
"""
HANGER = """
import threading

import mlflow.pyfunc
from mlflow.models import set_model


class Hanger(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        threading.Event().wait()  # a deadlock, as far as its caller can tell


set_model(Hanger())
"""


def _pipeline(estimator: Any, columns: list[str]) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = [c for c in columns if c == "color"]
    return make_pipeline(make_column_transformer((OneHotEncoder(), encode), remainder="passthrough"), estimator)


def _save(work: Path, name: str, model: Any, data: pd.DataFrame) -> str:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    path = str(work / name)
    features = data.drop(columns=["label"])
    signature = infer_signature(features, data["label"])
    mlflow.sklearn.save_model(
        model, path, signature=signature, input_example=features.head(2), serialization_format="cloudpickle"
    )
    return path


def register_versions(work: Path, mlflow_uri: str, data: pd.DataFrame) -> tuple[Any, Any]:
    """Versions 1 to 7 of model ``credit``; returns the fitted champion and challenger."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    features, label = data.drop(columns=["label"]), data["label"]
    champion = _pipeline(DecisionTreeClassifier(max_depth=1, random_state=0), list(features)).fit(features, label)
    challenger = _pipeline(LogisticRegression(max_iter=500), list(features)).fit(features, label)
    narrow = _pipeline(LogisticRegression(), ["x1", "x2"]).fit(features[["x1", "x2"]], label)
    (work / "crasher.py").write_text(CRASHER)
    crasher = str(work / "crasher")
    mlflow.pyfunc.save_model(crasher, python_model=str(work / "crasher.py"), signature=infer_signature(features, label))
    (work / "killer.py").write_text(KILLER)
    killer = str(work / "killer")
    mlflow.pyfunc.save_model(killer, python_model=str(work / "killer.py"), signature=infer_signature(features, label))
    (work / "sleeper.py").write_text(SLEEPER)
    sleeper = str(work / "sleeper")
    mlflow.pyfunc.save_model(sleeper, python_model=str(work / "sleeper.py"), signature=infer_signature(features, label))
    (work / "hanger.py").write_text(HANGER)
    hanger = str(work / "hanger")
    mlflow.pyfunc.save_model(hanger, python_model=str(work / "hanger.py"), signature=infer_signature(features, label))
    sources = [
        _save(work, "v1", champion, data),
        _save(work, "v2", challenger, data),
        crasher,
        _save(work, "v4", narrow, data[["x1", "x2", "label"]]),
        killer,
        sleeper,
        hanger,
    ]
    client = make_client(mlflow_uri)
    client.create_registered_model("credit")
    for source in sources:
        client.create_model_version("credit", source)
    return champion, challenger
