"""Operator identity over HTTP: who am I (/api/v1/operator) and operator API tokens
(/api/v1/tokens: create shows the value once, list, revoke)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from atryum.context import AppContext, get_ctx
from atryum.db.types import utcnow
from atryum.gateway.deps import Operator
from atryum.identity import api_tokens

router = APIRouter(tags=["operators"])
Ctx = Annotated[AppContext, Depends(get_ctx)]


class OperatorOut(BaseModel):
    issuer: str
    subject: str
    name: str
    method: str
    role: str


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    role: str = Field(description="viewer, approver or admin")
    expires_in: str = Field(
        default="", max_length=32, description="e.g. 90d, 12h, 2w (default: 90 days)"
    )


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    state: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, t: api_tokens.ApiToken) -> TokenOut:
        return cls(
            id=t.id,
            name=t.name,
            role=t.role,
            state=t.state(utcnow()),
            created_by=t.created_by,
            created_at=t.created_at,
            expires_at=t.expires_at,
            last_used_at=t.last_used_at,
            revoked_at=t.revoked_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="the token's value: shown here once, never again")


class TokenList(BaseModel):
    items: list[TokenOut]


@router.get("/api/v1/operator", response_model=OperatorOut)
def whoami(operator: Operator) -> OperatorOut:
    p = operator
    return OperatorOut(
        issuer=p.issuer, subject=p.subject, name=p.name, method=p.method, role=p.role
    )


@router.get("/api/v1/tokens", response_model=TokenList)
def list_tokens(ctx: Ctx) -> TokenList:
    return TokenList(items=[TokenOut.of(t) for t in api_tokens.list_tokens(ctx.engine)])


@router.post("/api/v1/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenIn, ctx: Ctx, operator: Operator) -> TokenCreated:
    days = ctx.config.operator.api_token_default_days
    span = api_tokens.parse_duration(body.expires_in or f"{days}d")
    token, value = api_tokens.create_token(
        ctx.engine, name=body.name, role=body.role, expires_in=span, actor=operator
    )
    return TokenCreated(**TokenOut.of(token).model_dump(), token=value)


@router.delete("/api/v1/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, ctx: Ctx, operator: Operator) -> TokenOut:
    return TokenOut.of(api_tokens.revoke_token(ctx.engine, token_id=token_id, actor=operator))
