"""The one adapter over MLflow's model registry, in mlwatch's terms.

Aliases ``champion`` (what serves) and ``previous`` (the rollback target); stages are never
used. MLflow has no compare-and-swap on aliases, so every change happens under a store lock
named after the model (``Store.exclusive``), which holds across processes and hosts; the
alias history MLflow lacks is written to the audit log in the same transaction.

    >>> registry = Registry.from_settings(settings, store)
    >>> registry.promote(service, "7", actor="alice", reason="gate passed")
    Promotion(model_name='credit', champion='7', previous='6', replaced='6')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.errors import Conflict, NotFound, ValidationFailed
from monitor.records import Service
from monitor.store import Store
from monitor.store.decisions import audit_on
from retrain.errors import RegistryError, RegistryUnavailable
from retrain.records import AliasChange, ModelVersionInfo, Promotion

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from sqlalchemy import Connection

    from monitor.config import Settings

CHAMPION = "champion"
PREVIOUS = "previous"
CANARY = "canary"
ALIASES = (CHAMPION, PREVIOUS)
"""The aliases mlwatch keeps a recorded history of and reconciles with outside changes."""
SET = "alias.set"
EXTERNAL = "alias.external_change"
T = TypeVar("T")
log = logging.getLogger("mlwatch.retrain")
OnChange = Callable[["Connection", Promotion], None]
"""Called with the lock's connection after an alias change, before it commits."""
OnExternal = Callable[["Connection", list[AliasChange], dict[str, str]], None]
"""Called with the lock's connection, the outside changes and the aliases after them, before it commits."""


_PREPARED: set[str] = set()


def make_client(tracking_uri: str, store: Store | None = None) -> MlflowClient:
    """An MlflowClient bound to ``tracking_uri`` for tracking and registry (no global state).

    With ``store``, a new embedded (SQLite) MLflow database is created under a store lock:
    MLflow migrates it on first use, and two processes doing that at once (worker, job,
    ``mlwatch serve``) break each other's migration.
    """
    from mlflow import MlflowClient

    if store is None or not tracking_uri.startswith("sqlite:") or tracking_uri in _PREPARED:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with store.exclusive("mlwatch.mlflow-init"):
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        client.search_experiments(max_results=1)
    _PREPARED.add(tracking_uri)
    return client


def model_name(service: Service) -> str:
    """The registered model of ``service`` (its own name unless configured)."""
    return service.model_name or service.name


MAX_VERSION = 2**31 - 1
"""MLflow numbers versions in an INTEGER column (32 bits on PostgreSQL and MySQL): a larger
number is no version at all, and MLflow's SQL store fails on it instead of answering "not found"."""
_SHOWN = 40
"""Characters of a refused value repeated in its error message."""


def check_version(version: object) -> str:
    """A version as MLflow numbers it ('7'); ValidationFailed for anything else.

    Checked before MLflow sees it (see ``MAX_VERSION``): 10**30 made MLflow's SQLite store
    answer with its driver's overflow error.
    """
    text = str(version).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_VERSION:
        raise ValidationFailed(
            "version",
            f"expected a model version number from 1 to {MAX_VERSION}, such as '3', got {_shown(version)}",
        )
    return str(int(text))


def _shown(value: object) -> str:
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 4]}...'"


class Registry:
    """Champion, previous, promote, rollback and versions of a service's registered model."""

    def __init__(self, client: MlflowClient, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.store = store
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> Registry:
        """A registry on ``settings.mlflow_tracking_uri``."""
        return cls(make_client(settings.mlflow_tracking_uri, store), store)

    # -- reading -------------------------------------------------------------------------

    def aliases(self, model: str) -> dict[str, str]:
        """Alias → version of ``model`` ({} when the model is not registered yet)."""
        try:
            registered = self._call(_model(model), self.client.get_registered_model, model)
        except NotFound:
            return {}
        return {str(k): str(v) for k, v in (registered.aliases or {}).items()}

    def champion(self, model: str) -> str | None:
        """The version serving now, if any."""
        return self.aliases(model).get(CHAMPION)

    def previous(self, model: str) -> str | None:
        """The rollback target, if any."""
        return self.aliases(model).get(PREVIOUS)

    def version(self, model: str, version: str) -> ModelVersionInfo:
        """One version with its run's metrics; NotFound names the model and version."""
        version = check_version(version)
        found = self._call(_version(model, version), self.client.get_model_version, model, version)
        return self._info(found, self.aliases(model))

    def versions(self, model: str, *, limit: int = 50) -> list[ModelVersionInfo]:
        """The newest versions of ``model``, newest first."""
        try:
            found = self._call(_model(model), self.client.search_model_versions, f"name = '{model}'", max_results=limit)
        except NotFound:
            return []
        aliases = self.aliases(model)
        ordered = sorted(found, key=lambda v: int(v.version), reverse=True)
        return [self._info(v, aliases) for v in ordered]

    def history(self, service: str, *, limit: int = 200) -> list[AliasChange]:
        """Alias changes of ``service``'s model, newest first (from mlwatch's audit log)."""
        entries = [e for a in (SET, EXTERNAL) for e in self.store.audit_entries(action=a, target=service, limit=limit)]
        entries.sort(key=lambda e: (e.ts, e.id), reverse=True)
        return [
            AliasChange(
                ts=e.ts,
                actor=e.actor,
                action=e.action,
                alias=str(e.details.get("alias")),
                from_version=e.details.get("from"),
                to_version=e.details.get("to"),
                reason=str(e.details.get("reason", "")),
            )
            for e in entries[:limit]
        ]

    def input_signature(self, model: str, version: str, tracking_uri: str) -> tuple[tuple[str, str], ...] | None:
        """The (column, type) pairs ``version`` was logged to take, None when it has no signature.

        Read from the version's ``MLmodel`` file (the whole model is downloaded: a LoggedModel's
        download URI names no single file).
        """
        import tempfile

        import mlflow.artifacts
        from mlflow.exceptions import MlflowException
        from mlflow.models import Model

        version = check_version(version)
        uri = self._call(_version(model, version), self.client.get_model_version_download_uri, model, version)
        with tempfile.TemporaryDirectory(prefix="mlwatch-signature-") as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=tracking_uri)
                signature = Model.load(path).signature
            except (OSError, MlflowException) as exc:  # files gone or never logged: the version cannot serve
                log.warning("the model files of %s could not be read: %s", _version(model, version), exc)
                raise ValidationFailed(
                    "version", f"the model files of {_version(model, version)} could not be read ({type(exc).__name__})"
                ) from exc
        if signature is None or signature.inputs is None:
            return None
        return tuple((str(c.get("name")), str(c.get("type"))) for c in signature.inputs.to_dict())

    # -- writing -------------------------------------------------------------------------

    def ensure_model(self, model: str) -> None:
        """Create the registered model if it does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(model)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                _raise_if_unreachable(exc)
                raise _refused("create", _model(model), exc) from exc

    def tag_version(self, model: str, version: str, tags: dict[str, str]) -> None:
        """Set tags on a version (decision, metrics, job id)."""
        for key, value in tags.items():
            self._call(_version(model, version), self.client.set_model_version_tag, model, version, key, str(value))

    def promote(
        self, service: Service, version: str, *, actor: str, reason: str, on_change: OnChange | None = None
    ) -> Promotion:
        """Make ``version`` the champion; the old champion becomes ``previous``.

        ``on_change`` runs inside the lock's transaction when the champion moved (to queue its
        webhook event atomically with the recorded history).
        """
        version = check_version(version)
        model = model_name(service)
        with self.store.exclusive(f"mlwatch.alias:{model}") as conn:
            self._call(_version(model, version), self.client.get_model_version, model, version)
            current = self.aliases(model)
            old = current.get(CHAMPION)
            if old == version:
                return Promotion(model, version, current.get(PREVIOUS), old)
            if old is not None:
                self._move(conn, service, PREVIOUS, current.get(PREVIOUS), old, actor, reason)
            self._move(conn, service, CHAMPION, old, version, actor, reason)
            done = Promotion(model, version, old if old is not None else current.get(PREVIOUS), old)
            if on_change is not None:
                on_change(conn, done)
            return done

    def rollback(self, service: Service, *, actor: str, reason: str, on_change: OnChange | None = None) -> Promotion:
        """Swap champion and previous; Conflict when there is no previous version."""
        model = model_name(service)
        with self.store.exclusive(f"mlwatch.alias:{model}") as conn:
            current = self.aliases(model)
            old, target = current.get(CHAMPION), current.get(PREVIOUS)
            if target is None:
                raise Conflict(f"model {model!r} has no 'previous' version to roll back to; promote a version instead")
            self._move(conn, service, CHAMPION, old, target, actor, reason)
            if old is not None:
                self._move(conn, service, PREVIOUS, target, old, actor, reason)
            done = Promotion(model, target, old, old)
            if on_change is not None:
                on_change(conn, done)
            return done

    def set_stage_alias(self, service: Service, alias: str, version: str, *, actor: str, reason: str) -> None:
        """Point a stage's alias (``canary``) at ``version``, audited like a promotion."""
        if alias in ALIASES:
            raise ValueError(f"{alias!r} moves by promote and rollback only")
        model = model_name(service)
        with self.store.exclusive(f"mlwatch.alias:{model}") as conn:
            self._move(conn, service, alias, self.aliases(model).get(alias), version, actor, reason)

    def remove_stage_alias(self, service: Service, alias: str, *, actor: str, reason: str) -> None:
        """Remove a stage's alias (``canary``) where it is set, audited; nothing when it is not."""
        if alias in ALIASES:
            raise ValueError(f"{alias!r} moves by promote and rollback only")
        model = model_name(service)
        with self.store.exclusive(f"mlwatch.alias:{model}") as conn:
            old = self.aliases(model).get(alias)
            if old is None:
                return
            self._call(_model(model), self.client.delete_registered_model_alias, model, alias)
            audit_on(conn, actor, SET, service.name, _details(model, alias, old, None, reason))

    def notice_external_changes(self, service: Service, on_change: OnExternal | None = None) -> list[AliasChange]:
        """Record alias moves made outside mlwatch (MLflow UI or API) since the last recorded ones.

        A champion moved outside mlwatch leaves the one it replaced as ``previous`` (as a
        promotion would), so a rollback can undo it; ``on_change`` runs in the same
        transaction when anything moved (to queue the webhook event with the record).
        """
        model = model_name(service)
        with self.store.exclusive(f"mlwatch.alias:{model}") as conn:
            current = self.aliases(model)
            recorded = self._recorded(service.name)
            after = self._keep_previous(conn, service, recorded, current)
            changes = []
            for alias in ALIASES:
                if current.get(alias) != recorded.get(alias) and (alias in current or alias in recorded):
                    details = _details(model, alias, recorded.get(alias), current.get(alias), "changed outside mlwatch")
                    audit_on(conn, "mlflow", EXTERNAL, service.name, details)
                    changes.append(_change(self.clock(), "mlflow", EXTERNAL, details))
            if changes and on_change is not None:
                on_change(conn, changes, after)
            return changes

    def _keep_previous(
        self, conn: Connection, service: Service, recorded: dict[str, str], current: dict[str, str]
    ) -> dict[str, str]:
        """Make the champion an outside change replaced ``previous``; returns the aliases after that.

        Left alone when the champion did not move, was removed, or ``previous`` was moved
        outside mlwatch too (that choice is the operator's), or the old version is gone.
        """
        old, new = recorded.get(CHAMPION), current.get(CHAMPION)
        unchanged_previous = current.get(PREVIOUS) == recorded.get(PREVIOUS)
        if old is None or new is None or old == new or current.get(PREVIOUS) == old or not unchanged_previous:
            return current
        reason = f"champion {old} was replaced outside mlwatch; kept as previous for rollback"
        try:
            self._move(conn, service, PREVIOUS, current.get(PREVIOUS), old, "mlwatch", reason)
        except NotFound:
            log.warning(
                "version %s of %s is gone; 'previous' left at %s", old, model_name(service), current.get(PREVIOUS)
            )
            return current
        return {**current, PREVIOUS: old}

    # -- internals -----------------------------------------------------------------------

    def _move(
        self, conn: Connection, service: Service, alias: str, old: str | None, new: str, actor: str, reason: str
    ) -> None:
        model = model_name(service)
        self._call(_version(model, new), self.client.set_registered_model_alias, model, alias, new)
        audit_on(conn, actor, SET, service.name, _details(model, alias, old, new, reason))

    def _recorded(self, service: str) -> dict[str, str]:
        """Alias → version as last written to the audit log."""
        out: dict[str, str] = {}
        for change in reversed(self.history(service, limit=1000)):
            if change.to_version is None:
                out.pop(change.alias, None)
            else:
                out[change.alias] = change.to_version
        return out

    def _info(self, found: Any, aliases: dict[str, str]) -> ModelVersionInfo:
        version = str(found.version)
        metrics: dict[str, float] = {}
        if found.run_id:
            try:
                metrics = dict(self._call(f"run {found.run_id!r}", self.client.get_run, found.run_id).data.metrics)
            except NotFound:
                metrics = {}
        return ModelVersionInfo(
            version=version,
            run_id=found.run_id,
            created_at=(found.creation_timestamp or 0) / 1000,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
            tags=dict(found.tags or {}),
            metrics=metrics,
            source=str(found.source or ""),
        )

    @staticmethod
    def _call(subject: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call MLflow about ``subject``; its exceptions become NotFound, Conflict or RegistryError.

        The messages are mlwatch's own: MLflow's text can carry its SQL store's internals
        (a driver's overflow error, table names), so it goes to the log, never to the caller.
        """
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFound(f"unknown {subject}; GET /v1/services/<service>/models lists its versions") from exc
            if exc.error_code == "RESOURCE_ALREADY_EXISTS":
                raise Conflict(f"{subject} already exists in the MLflow registry") from exc
            _raise_if_unreachable(exc)
            raise _refused(getattr(fn, "__name__", "call"), subject, exc) from exc


def _model(model: str) -> str:
    return f"model {model!r}"


def _version(model: str, version: str) -> str:
    return f"version {version!r} of model {model!r}"


def _refused(action: str, subject: str, exc: Exception) -> RegistryError:
    """mlwatch's error for an MLflow failure that is neither "not found" nor "exists"; MLflow's
    own text is logged for the operator."""
    code = getattr(exc, "error_code", None) or "unknown"
    log.warning("MLflow %s on %s failed (%s): %s", action, subject, code, exc)
    return RegistryError(
        f"the MLflow registry could not {action.replace('_', ' ')} ({subject}, MLflow error code {code}); "
        "its details are in mlwatch's log"
    )


def _raise_if_unreachable(exc: BaseException) -> None:
    """RegistryUnavailable when ``exc`` comes from a connection that failed, timed out or kept
    getting 5xx answers.

    MLflow's REST client wraps those in a plain MlflowException, without an error code.
    """
    from requests.exceptions import ConnectionError, RetryError, Timeout

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionError | RetryError | Timeout):
            log.warning("MLflow cannot be reached: %s", seen)
            raise RegistryUnavailable(
                f"MLflow cannot be reached ({type(seen).__name__}); "
                "check that its tracking server is up, then try again"
            ) from exc
        seen = seen.__cause__ or seen.__context__


def _details(model: str, alias: str, old: str | None, new: str | None, reason: str) -> dict[str, Any]:
    return {"model": model, "alias": alias, "from": old, "to": new, "reason": reason}


def _change(ts: float, actor: str, action: str, details: dict[str, Any]) -> AliasChange:
    return AliasChange(ts, actor, action, details["alias"], details["from"], details["to"], details["reason"])
