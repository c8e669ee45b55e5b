"""An MLflow Project trainer: fits a logistic regression on the numerical columns and logs it as ``model``."""

import sys

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

frame = pd.read_parquet(sys.argv[1])
target, window_start, window_end, mode = sys.argv[2:6]
features = [c for c in frame.columns if c not in (target, "mlwatch_weight")]
numerical = [c for c in features if frame[c].dtype.kind == "f"]
model = Pipeline([("cols", ColumnTransformer([("n", "passthrough", numerical)])), ("lr", LogisticRegression())])
model.fit(frame[features], frame[target])
with mlflow.start_run():
    mlflow.log_metric("train_rows", len(frame))
    mlflow.set_tag("trained_window", f"{window_start}..{window_end} ({mode})")
    signature = infer_signature(frame[features].head(100), model.predict(frame[features].head(100)))
    mlflow.sklearn.log_model(
        model, name="model", signature=signature, serialization_format="cloudpickle", pip_requirements=[]
    )
