"""mlwatch's exception tree.

    MlwatchError
    ├── ConfigError            bad mlwatch.yaml / MLWATCH_* value
    ├── StoreError             the store could not do what was asked
    │   ├── NotFound           unknown service, check, alert, job, ...
    │   └── Conflict           the request contradicts stored state
    ├── ValidationFailed       a payload does not match what was expected
    ├── AuthError              missing, unknown or insufficient token
    └── Unavailable            a service mlwatch relies on (MLflow) cannot be reached

Every message says what was expected, what came, and how to fix it. The HTTP API maps
them to 4xx answers, and ``Unavailable`` to 503 (see ``monitor.server.errors``).
"""

from __future__ import annotations


class MlwatchError(Exception):
    """Base of every error mlwatch raises on purpose."""


class ConfigError(MlwatchError):
    """The configuration is invalid; the message names the key."""


class StoreError(MlwatchError):
    """The store could not complete an operation."""


class NotFound(StoreError):
    """The named object does not exist."""


class Conflict(StoreError):
    """The operation contradicts what is already stored."""


class ValidationFailed(MlwatchError):
    """A payload failed validation; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AuthError(MlwatchError):
    """Authentication or authorization failed."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class Unavailable(MlwatchError):
    """A service mlwatch relies on did not answer (refused, or timed out); try again later."""
