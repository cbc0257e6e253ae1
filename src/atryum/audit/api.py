"""GET /api/v1/audit: who changed what, newest first, paged and filterable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from atryum.audit import store
from atryum.context import AppContext, get_ctx
from atryum.limits import INT32_MAX

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Ctx = Annotated[AppContext, Depends(get_ctx)]


class AuditOut(BaseModel):
    id: str
    at: datetime
    actor: str
    actor_name: str
    actor_method: str
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    offset: int
    limit: int


def read_page(
    ctx: AppContext, *, flt: store.AuditFilter, offset: int, limit: int
) -> tuple[list[store.AuditEntry], int]:
    with ctx.engine.connect() as conn:
        return store.list_changes(conn, flt=flt, offset=offset, limit=limit)


@router.get("", response_model=AuditPage)
def list_audit(
    ctx: Ctx,
    entity: str | None = Query(None, description="rule, policy, settings, agent, api_token, …"),
    entity_id: str | None = None,
    actor: str | None = Query(None, description="the operator's reference or display name"),
    since: datetime | None = None,
    offset: int = Query(0, ge=0, le=INT32_MAX),
    limit: int = Query(50, ge=1, le=500),
) -> AuditPage:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    flt = store.AuditFilter(entity=entity, entity_id=entity_id, actor=actor, since=since)
    items, total = read_page(ctx, flt=flt, offset=offset, limit=limit)
    return AuditPage(
        items=[AuditOut(**vars(i)) for i in items], total=total, offset=offset, limit=limit
    )
