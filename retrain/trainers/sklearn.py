"""The built-in scikit-learn trainer: imputation, scaling and one-hot encoding, then an estimator.

``params``: ``estimator`` (one of ``ESTIMATORS``; default ``hist_gradient_boosting``),
``estimator_params`` (keyword arguments of the estimator), ``fine_tune_iterations`` (trees
or epochs added in fine-tune mode, default 50). Fine-tune keeps the champion's fitted
preprocessing and continues its estimator: ``partial_fit`` where it has one, else
``warm_start`` with more iterations; estimators with neither are refused with the list of
those that can.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.errors import ConfigError
from retrain.data import WEIGHT
from retrain.errors import FineTuneUnsupported, TrainerError
from retrain.trainers.base import TrainedModel, TrainRequest

if TYPE_CHECKING:
    import numpy as np
    from sklearn.pipeline import Pipeline

ESTIMATORS: dict[str, tuple[str, str]] = {
    "hist_gradient_boosting": ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"),
    "random_forest": ("RandomForestClassifier", "RandomForestRegressor"),
    "linear": ("LogisticRegression", "Ridge"),
    "sgd": ("SGDClassifier", "SGDRegressor"),
    "decision_tree": ("DecisionTreeClassifier", "DecisionTreeRegressor"),
}
_MODULES = {"HistGradientBoosting": "ensemble", "RandomForest": "ensemble", "Decision": "tree"}
_ITERATION_PARAMS = ("max_iter", "n_estimators")
FINE_TUNABLE = ("hist_gradient_boosting", "random_forest", "linear (classification)", "sgd")


class SklearnTrainer:
    """Fits ``ColumnTransformer`` preprocessing and a classifier or regressor chosen by the task."""

    def train(self, request: TrainRequest) -> TrainedModel:
        """Train from scratch, or continue the champion in fine-tune mode."""
        if request.mode == "fine_tune":
            return self._fine_tune(request)
        name = str(request.params.get("estimator", "hist_gradient_boosting"))
        pipeline = build_pipeline(request, name)
        X, y, weight = _xyw(request)
        pipeline.fit(X, y, model__sample_weight=weight)
        return TrainedModel(pipeline, "sklearn", {"estimator": name, **_estimator_params(request)})

    def _fine_tune(self, request: TrainRequest) -> TrainedModel:
        if request.champion_path is None:
            raise TrainerError("fine-tune needs a champion to start from; this model has none yet, use mode: retrain")
        import mlflow.sklearn

        pipeline = mlflow.sklearn.load_model(request.champion_path)
        estimator = pipeline.named_steps["model"] if hasattr(pipeline, "named_steps") else pipeline
        X, y, weight = _xyw(request)
        features = pipeline.named_steps["preprocess"].transform(X) if hasattr(pipeline, "named_steps") else X
        how = continue_fit(estimator, features, y, weight, int(request.params.get("fine_tune_iterations", 50)))
        return TrainedModel(pipeline, "sklearn", {"estimator": type(estimator).__name__, "fine_tune": how})


def build_pipeline(request: TrainRequest, name: str) -> Pipeline:
    """Preprocessing for the request's numerical and categorical features, then the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = request.data
    numerical = [f for f in data.features if f not in data.categorical]
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("encode", OneHotEncoder(handle_unknown="ignore", max_categories=50, sparse_output=False)),
        ]
    )
    preprocess = ColumnTransformer(
        [("num", numeric, numerical), ("cat", categorical, list(data.categorical))], remainder="drop"
    )
    return Pipeline(
        [("preprocess", preprocess), ("model", make_estimator(name, data.task, _estimator_params(request)))]
    )


def make_estimator(name: str, task: str, params: dict[str, Any]) -> Any:
    """The estimator ``name`` for ``task``; ConfigError lists the known names."""
    import importlib

    if name not in ESTIMATORS:
        raise ConfigError(
            f"retrain.params.estimator: unknown estimator {name!r}; expected one of {', '.join(ESTIMATORS)}"
        )
    cls_name = ESTIMATORS[name][0 if task == "classification" else 1]
    module = next((m for prefix, m in _MODULES.items() if cls_name.startswith(prefix)), "linear_model")
    cls = getattr(importlib.import_module(f"sklearn.{module}"), cls_name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"retrain.params.estimator_params: {cls_name} refused them: {exc}") from exc


def continue_fit(estimator: Any, X: Any, y: np.ndarray, weight: np.ndarray, iterations: int) -> str:
    """Continue training a fitted estimator; returns how ('partial_fit' or 'warm_start')."""
    if hasattr(estimator, "partial_fit"):
        estimator.partial_fit(X, y, sample_weight=weight)
        return "partial_fit"
    params = estimator.get_params()
    if "warm_start" not in params:
        raise FineTuneUnsupported(
            f"cannot fine-tune the champion: its estimator {type(estimator).__name__} supports neither partial_fit "
            f"nor warm_start; use mode: retrain, or an estimator that can continue ({', '.join(FINE_TUNABLE)})"
        )
    more = {p: params[p] + iterations for p in _ITERATION_PARAMS if isinstance(params.get(p), int)}
    estimator.set_params(warm_start=True, **more)
    estimator.fit(X, y, sample_weight=weight)
    return "warm_start"


def _xyw(request: TrainRequest) -> tuple[Any, Any, Any]:
    frame = request.data.train
    if frame[request.data.target].nunique() < 2 and request.data.task == "classification":
        raise TrainerError(f"the training data has a single class in {request.data.target!r}; need at least two")
    return frame[list(request.data.features)], frame[request.data.target].to_numpy(), frame[WEIGHT].to_numpy()


def _estimator_params(request: TrainRequest) -> dict[str, Any]:
    params = request.params.get("estimator_params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"retrain.params.estimator_params: expected a mapping, got {params!r}")
    return dict(params)
