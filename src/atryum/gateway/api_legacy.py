"""The Go original's read-only reporting routes, for machine callers holding the `[api_key]`
pair: `GET /agent_ids`, `GET /invocations/{agent_id}`, `GET /models/{vm_cuid}/invocations`."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query

from atryum.auth import require_machine_key
from atryum.gateway import service, store
from atryum.gateway.api_review import invocation_page
from atryum.gateway.deps import Ctx, Runtime
from atryum.gateway.schemas import InvocationPage
from atryum.limits import INT32_MAX

router = APIRouter(tags=["reporting"], dependencies=[Depends(require_machine_key)])

MAX_LIMIT = 500
Offset = Query(0, ge=0, le=INT32_MAX)
Limit = Query(50, ge=1, le=MAX_LIMIT)
Start = Query(None, description="RFC 3339 time or YYYY-MM-DD (UTC); submitted at or after")
End = Query(None, description="RFC 3339 time or YYYY-MM-DD (UTC); submitted at or before")


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC (as in the Go original)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@router.get("/agent_ids")
def agent_ids(ctx: Ctx) -> dict[str, list[str]]:
    """The distinct runtime agent ids that submitted invocations."""
    return {"items": service.runtime_agent_ids(ctx.engine)}


@router.get("/invocations/{agent_id}", response_model=InvocationPage)
def invocations_of_agent(
    agent_id: str,
    ctx: Ctx,
    rt: Runtime,
    offset: int = Offset,
    limit: int = Limit,
    start_date: datetime | None = Start,
    end_date: datetime | None = End,
) -> InvocationPage:
    """Invocations of a runtime agent id (or registry agent id), newest first."""
    flt = store.InvocationFilter(agent=agent_id, since=_utc(start_date), until=_utc(end_date))
    return invocation_page(ctx, rt, flt, offset=offset, limit=limit)


@router.get("/models/{vm_cuid}/invocations", response_model=InvocationPage)
def invocations_of_model(
    vm_cuid: str,
    ctx: Ctx,
    rt: Runtime,
    offset: int = Offset,
    limit: int = Limit,
    start_date: datetime | None = Start,
    end_date: datetime | None = End,
) -> InvocationPage:
    """Invocations of the agent synced from ValidMind record `vm_cuid`, newest first."""
    agent_id = service.agent_for_vm_cuid(ctx.engine, vm_cuid=vm_cuid)
    flt = store.InvocationFilter(agent=agent_id, since=_utc(start_date), until=_utc(end_date))
    return invocation_page(ctx, rt, flt, offset=offset, limit=limit)
