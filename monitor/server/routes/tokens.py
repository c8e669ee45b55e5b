"""API tokens: list them with their last use, create one, revoke one (admin).

GET    /v1/tokens         admin   every token, revoked ones included (never a hash)
POST   /v1/tokens         admin   {"role", "name"} -> the token, shown this once
DELETE /v1/tokens/{id}    admin   revoke: refused by this process at once, by others within seconds
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from monitor.config import Text
from monitor.records import ApiToken
from monitor.server.auth import Principal, TokenAuth, require
from monitor.server.body import json_body, openapi_body
from monitor.server.schemas import ObjectId
from monitor.store import Store

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])
Admin = Annotated[Principal, Depends(require("admin"))]


class TokenIn(BaseModel):
    """A token to create."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["ingest", "viewer", "operator", "admin"]
    name: Text = Field(default="", description="a label for the audit log (default: the role)")


class TokenOut(BaseModel):
    """A token as listed: when it was made and last used, and whether it is revoked."""

    id: int
    name: str
    role: str
    created_at: float
    last_used_at: float | None = Field(description="epoch seconds, written at most once a minute; null: never used")
    revoked: bool

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        """The listing of a stored token."""
        return cls(
            id=token.id,
            name=token.name,
            role=token.role,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            revoked=token.revoked,
        )


class CreatedTokenOut(TokenOut):
    """A new token's listing and the token itself, which is not shown again."""

    token: str


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _auth(request: Request) -> TokenAuth:
    auth: TokenAuth = request.app.state.auth
    return auth


@router.get("", response_model=list[TokenOut])
def list_tokens(_: Admin, store: Annotated[Store, Depends(_store)]) -> list[TokenOut]:
    """Every API token, oldest first."""
    return [TokenOut.of(t) for t in store.list_tokens()]


@router.post("", response_model=CreatedTokenOut, status_code=201, openapi_extra=openapi_body(TokenIn))
def create_token(
    who: Admin, body: Annotated[TokenIn, Depends(json_body(TokenIn))], store: Annotated[Store, Depends(_store)]
) -> CreatedTokenOut:
    """Create a token; the answer is the only place its plain value appears."""
    listed, token = store.issue_token(body.role, body.name)
    store.audit(who.name, "token.create", str(listed.id), {"role": listed.role, "name": listed.name})
    return CreatedTokenOut(**TokenOut.of(listed).model_dump(), token=token)


@router.delete("/{token_id}", response_model=TokenOut)
def revoke_token(
    who: Admin,
    token_id: ObjectId,
    auth: Annotated[TokenAuth, Depends(_auth)],
    store: Annotated[Store, Depends(_store)],
) -> TokenOut:
    """Revoke a token (revoking it again is no error); 404 when there is no such token."""
    revoked = auth.revoke(token_id)
    store.audit(who.name, "token.revoke", str(token_id), {"role": revoked.role, "name": revoked.name})
    return TokenOut.of(revoked)
