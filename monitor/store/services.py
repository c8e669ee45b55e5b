"""Services, API tokens and the audit log."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, select, update

from monitor.errors import NotFound
from monitor.records import ApiToken, AuditEntry, Feature, Service
from monitor.roles import ROLES
from monitor.store import schema as t
from monitor.store.codec import loads
from monitor.store.engine import write_transaction
from monitor.store.storable import check_text, json_text


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
        check_text("name", name, 100)
        values = {
            "task": check_text("task", task, 20),
            "model_name": check_text("model_name", model_name or name, 200),
            "target": check_text("target", target, 200),
            "features": json_text("features", [_feature_dict(f) for f in features]),
            "config": json_text("config", config or {}),
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
        check_text("service", name)
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
        return self.issue_token(role, name)[1]

    def issue_token(self, role: str, name: str = "") -> tuple[ApiToken, str]:
        """Create an API token with ``role``: its listing and the plain token, which is never stored."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        token = f"mlw_{secrets.token_urlsafe(32)}"
        listed = ApiToken(id=0, name=name or role, role=role, created_at=time.time(), last_used_at=None, revoked=False)
        with write_transaction(self.engine) as conn:
            inserted = conn.execute(
                t.api_tokens.insert()
                .values(
                    name=listed.name,
                    role=role,
                    token_hash=hash_token(token),
                    created_at=listed.created_at,
                    revoked=False,
                )
                .returning(t.api_tokens.c.id)
            )
            token_id = int(inserted.scalar_one())
        return replace(listed, id=token_id), token

    def token_access(self, token: str) -> ApiToken | None:
        """The listing of a valid, unrevoked token, or None."""
        query = select(*_TOKEN_COLUMNS).where(
            t.api_tokens.c.token_hash == hash_token(token), t.api_tokens.c.revoked.is_(False)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _token(row)

    def token_role(self, token: str) -> str | None:
        """The role of a valid, unrevoked token, or None."""
        found = self.token_access(token)
        return None if found is None else found.role

    def list_tokens(self) -> list[ApiToken]:
        """Every API token, revoked ones included, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_TOKEN_COLUMNS).order_by(t.api_tokens.c.id)).all()
        return [_token(r) for r in rows]

    def revoke_token(self, token: str) -> bool:
        """Revoke a token given in plain; True when it existed."""
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                update(t.api_tokens).where(t.api_tokens.c.token_hash == hash_token(token)).values(revoked=True)
            )
        return bool(result.rowcount)

    def revoke_token_id(self, token_id: int) -> ApiToken:
        """Revoke the token with ``token_id`` (again is fine); NotFound when there is none."""
        with write_transaction(self.engine) as conn:
            conn.execute(update(t.api_tokens).where(t.api_tokens.c.id == token_id).values(revoked=True))
            row = conn.execute(select(*_TOKEN_COLUMNS).where(t.api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"no API token with id {token_id}; `mlwatch token list` (or GET /v1/tokens) shows them")
        return _token(row)

    def touch_token(self, token_id: int, at: float, every: float = 60.0) -> bool:
        """Set the token's last use to ``at`` unless it was set less than ``every`` seconds before; True if written."""
        last = t.api_tokens.c.last_used_at
        stale = (t.api_tokens.c.id == token_id) & (last.is_(None) | (last <= at - every))
        with write_transaction(self.engine) as conn:
            result = conn.execute(update(t.api_tokens).where(stale).values(last_used_at=at))
        return bool(result.rowcount)

    def audit(self, actor: str, action: str, target: str, details: dict[str, Any] | None = None) -> None:
        """Record who did what to which object."""
        values = audit_values(actor, action, target, details or {})
        with write_transaction(self.engine) as conn:
            conn.execute(t.audit_log.insert().values(ts=time.time(), **values))

    def audit_entries(
        self, *, action: str | None = None, target: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Newest audit entries first, optionally filtered."""
        check_text("action", action)
        check_text("target", target)
        query = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        if action:
            query = query.where(t.audit_log.c.action == action)
        if target:
            query = query.where(t.audit_log.c.target == target)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(r.id, r.ts, r.actor, r.action, r.target, loads(r.details)) for r in rows]


_TOKEN_COLUMNS = tuple(t.api_tokens.c[name] for name in ("id", "name", "role", "created_at", "last_used_at", "revoked"))


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked=bool(row.revoked),
    )


def audit_values(actor: str, action: str, target: str, details: dict[str, Any]) -> dict[str, str]:
    """The columns of an audit entry, each checked to be storable (a service name, a rule name or
    a comment may come from a request)."""
    return {
        "actor": check_text("actor", actor, 200) or "",
        "action": check_text("action", action, 60) or "",
        "target": check_text("target", target, 200) or "",
        "details": json_text("details", details),
    }


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
