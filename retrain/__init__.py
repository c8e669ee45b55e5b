"""Retraining, evaluation and promotion through MLflow, and a serving process that hot-swaps.

    >>> from retrain.actions import request_retrain, promote, rollback, list_models
    >>> job = request_retrain(store, settings, "credit", mode="retrain", actor="cli")

Modules, one concept each: ``records`` (typed results), ``errors``, ``registry`` (the one
adapter over MLflow's registry), ``data`` (the training frame), ``trainers`` (scikit-learn,
entry points, MLflow Projects), ``logged_model`` (a model as an MLflow 3 LoggedModel),
``lineage`` (its datasets, sourced from the store window), ``evaluation`` (scores and the
gate), ``significance`` (the gate's noise test), ``runner`` (one job, end to end),
``actions`` (what the API, CLI and dashboard call), ``episodes`` (when an alert may start a
retrain), ``tasks`` (worker tasks), ``serving`` (``mlwatch serve``). mlflow is imported only
inside functions that need it (``lineage`` subclasses one of its classes, so it is itself
imported only there).
"""
