"""Errors of retraining, under mlwatch's tree (see ``monitor.errors``).

MlwatchError
├── StoreError ── NotFound / Conflict      unknown version or job; a job already finished
└── RetrainError                           training could not run as configured
    ├── TrainerError                       a trainer failed or returned something unusable
    │   └── FineTuneUnsupported            the champion's estimator cannot continue training
    ├── RegistryError                      MLflow's registry refused or failed a call
    │   └── RegistryUnavailable            ... because MLflow could not be reached (also Unavailable)
    └── JobCancelled                       an operator cancelled the running job
"""

from __future__ import annotations

from monitor.errors import MlwatchError, Unavailable


class RetrainError(MlwatchError):
    """Base of retraining errors."""


class TrainerError(RetrainError):
    """A trainer failed or returned something that cannot be logged."""


class FineTuneUnsupported(TrainerError):
    """Fine-tuning was asked for a model that supports neither warm start nor incremental fit."""


class RegistryError(RetrainError):
    """The MLflow registry refused or failed an operation."""


class RegistryUnavailable(RegistryError, Unavailable):
    """MLflow's tracking server refused the connection or did not answer in time."""


class JobCancelled(RetrainError):
    """The job was cancelled while it ran."""
