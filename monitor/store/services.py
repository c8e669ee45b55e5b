"""Services, API tokens and the audit log."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from sqlalchemy import Engine, select, update

from monitor.errors import NotFound
from monitor.records import AuditEntry, Feature, Service
from monitor.store import schema as t
from monitor.store.codec import dumps, loads
from monitor.store.engine import write_transaction

ROLES = ("ingest", "viewer", "operator", "admin")


def hash_token(token: str) -> str:
    """SHA-256 of a token: tokens are 256-bit random, so a plain digest is safe to store."""
    return hashlib.sha256(token.encode()).hexdigest()


class ServicesMixin:
    """Store methods for services, tokens and audit entries."""

    engine: Engine

    def upsert_service(
        self,
        name: str,
        *,
        task: str,
        model_name: str | None = None,
        target: str | None = None,
        features: tuple[Feature, ...] = (),
        config: dict[str, Any] | None = None,
    ) -> Service:
        """Register ``name`` or update it in place; returns the stored service."""
        now = time.time()
        values = {
            "task": task,
            "model_name": model_name or name,
            "target": target,
            "features": dumps([_feature_dict(f) for f in features]),
            "config": dumps(config or {}),
            "updated_at": now,
        }
        with write_transaction(self.engine) as conn:
            found = conn.execute(select(t.services.c.id).where(t.services.c.name == name)).scalar()
            if found is None:
                conn.execute(t.services.insert().values(name=name, created_at=now, **values))
            else:
                conn.execute(t.services.update().where(t.services.c.id == found).values(**values))
        return self.get_service(name)

    def get_service(self, name: str) -> Service:
        """The service called ``name``; NotFound if none.

        The message never lists the other services: any token may ask for any name, and the
        names of services it was not asking about are not its business.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(t.services).where(t.services.c.name == name)).first()
        if row is None:
            raise NotFound(
                f"unknown service {name!r}; list services with GET /v1/services or register it with POST /v1/services"
            )
        return _service(row)

    def list_services(self) -> list[Service]:
        """Every registered service, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.services).order_by(t.services.c.name)).all()
        return [_service(r) for r in rows]

    def create_token(self, role: str, name: str = "") -> str:
        """Create an API token with ``role``; the plain token is returned once and never stored."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        token = f"mlw_{secrets.token_urlsafe(32)}"
        with write_transaction(self.engine) as conn:
            conn.execute(
                t.api_tokens.insert().values(
                    name=name or role, role=role, token_hash=hash_token(token), created_at=time.time(), revoked=False
                )
            )
        return token

    def token_role(self, token: str) -> str | None:
        """The role of a valid, unrevoked token, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.api_tokens.c.role).where(
                    t.api_tokens.c.token_hash == hash_token(token), t.api_tokens.c.revoked.is_(False)
                )
            ).first()
        return None if row is None else str(row.role)

    def revoke_token(self, token: str) -> bool:
        """Revoke a token; True when it existed."""
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                update(t.api_tokens).where(t.api_tokens.c.token_hash == hash_token(token)).values(revoked=True)
            )
        return bool(result.rowcount)

    def audit(self, actor: str, action: str, target: str, details: dict[str, Any] | None = None) -> None:
        """Record who did what to which object."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                t.audit_log.insert().values(
                    ts=time.time(), actor=actor, action=action, target=target, details=dumps(details or {})
                )
            )

    def audit_entries(
        self, *, action: str | None = None, target: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Newest audit entries first, optionally filtered."""
        query = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        if action:
            query = query.where(t.audit_log.c.action == action)
        if target:
            query = query.where(t.audit_log.c.target == target)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(r.id, r.ts, r.actor, r.action, r.target, loads(r.details)) for r in rows]


def _feature_dict(feature: Feature) -> dict[str, Any]:
    out: dict[str, Any] = {"name": feature.name, "type": feature.type}
    if feature.drift_method:
        out["drift_method"] = feature.drift_method
    if feature.drift_threshold is not None:
        out["drift_threshold"] = feature.drift_threshold
    return out


def _service(row: Any) -> Service:
    return Service(
        id=row.id,
        name=row.name,
        task=row.task,
        model_name=row.model_name,
        target=row.target,
        features=tuple(Feature(**f) for f in loads(row.features)),
        config=loads(row.config),
        created_at=row.created_at,
    )
