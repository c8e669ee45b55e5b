"""Retraining, evaluation and promotion through MLflow, and a serving process that hot-swaps.

    >>> from retrain.actions import request_retrain, promote, rollback, list_models
    >>> job = request_retrain(store, settings, "credit", mode="retrain", actor="cli")

Modules, one concept each: ``records`` (typed results), ``errors``, ``registry`` (the one
adapter over MLflow's registry), ``data`` (the training frame), ``trainers`` (scikit-learn,
entry points, MLflow Projects), ``evaluation`` (scores and the gate), ``runner`` (one job,
end to end), ``actions`` (what the API, CLI and dashboard call), ``tasks`` (worker tasks),
``serving`` (``mlwatch serve``). mlflow is imported only inside functions that need it.
"""
