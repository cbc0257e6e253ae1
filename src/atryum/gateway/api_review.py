"""Human review: /api/v1/review/invocations (list, detail, events, approve, deny, live stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from atryum.errors import NotFound
from atryum.gateway import approvals, service, store
from atryum.gateway.deps import Ctx, Operator, Runtime
from atryum.gateway.schemas import (
    DecisionIn,
    DecisionOut,
    EventList,
    EventOut,
    InvocationOut,
    InvocationPage,
)
from atryum.identity.principal import OperatorPrincipal
from atryum.limits import INT32_MAX, Timestamp

router = APIRouter(prefix="/api/v1/review/invocations", tags=["review"])


@router.get("", response_model=InvocationPage)
def list_invocations(
    ctx: Ctx,
    rt: Runtime,
    status: str | None = Query(None, description="one status or several, comma-separated"),
    agent: str | None = Query(None, description="registry agent id or runtime agent id"),
    source: str | None = None,
    tool: str | None = None,
    since: Timestamp | None = None,
    offset: int = Query(0, ge=0, le=INT32_MAX),
    limit: int = Query(50, ge=1, le=500),
) -> InvocationPage:
    flt = store.InvocationFilter(
        statuses=[s.strip() for s in (status or "").split(",") if s.strip()],
        agent=agent,
        source=source,
        tool=tool,
        since=since,
    )
    return invocation_page(ctx, rt, flt, offset=offset, limit=limit)


def invocation_page(
    ctx: Ctx, rt: Runtime, flt: store.InvocationFilter, *, offset: int, limit: int
) -> InvocationPage:
    items, total = service.list_invocations(
        ctx.engine, flt=flt, offset=offset, limit=limit, hub=rt.hub
    )
    return InvocationPage(
        items=[InvocationOut.of(i) for i in items], total=total, offset=offset, limit=limit
    )


@router.get("/stream", response_class=EventSourceResponse)
async def stream(request: Request, ctx: Ctx, rt: Runtime) -> EventSourceResponse:
    """Server-sent events: `invocation` (its current JSON) whenever one changes."""
    sub = rt.hub.subscribe()

    async def events() -> AsyncIterator[dict[str, Any]]:
        try:
            yield {"event": "ready", "data": "{}"}
            while True:
                change = await sub.next(timeout=60)
                if change is None:
                    continue
                if change.invocation_id is None:
                    yield {"event": "resync", "data": "{}"}
                    continue
                try:
                    inv = await run_in_threadpool(
                        service.get_invocation, ctx.engine, invocation_id=change.invocation_id
                    )
                except NotFound:
                    continue
                yield {
                    "event": "invocation",
                    "id": f"{inv.id}:{inv.status}",
                    "data": InvocationOut.of(inv).model_dump_json(),
                }
        finally:
            rt.hub.unsubscribe(sub)

    return EventSourceResponse(events(), ping=15)


@router.get("/{invocation_id}", response_model=InvocationOut)
def get_invocation(invocation_id: str, ctx: Ctx, rt: Runtime) -> InvocationOut:
    return InvocationOut.of(
        service.get_invocation(ctx.engine, invocation_id=invocation_id, hub=rt.hub)
    )


@router.get("/{invocation_id}/events", response_model=EventList)
def get_events(invocation_id: str, ctx: Ctx) -> EventList:
    events = service.list_events(ctx.engine, invocation_id=invocation_id)
    return EventList(items=[EventOut.of(e) for e in events])


@router.post("/{invocation_id}/approve", response_model=DecisionOut)
def approve(
    invocation_id: str, ctx: Ctx, rt: Runtime, actor: Operator, body: DecisionIn | None = None
) -> DecisionOut:
    return _decide(ctx, rt, invocation_id, approve=True, actor=actor, body=body)


@router.post("/{invocation_id}/deny", response_model=DecisionOut)
def deny(
    invocation_id: str, ctx: Ctx, rt: Runtime, actor: Operator, body: DecisionIn | None = None
) -> DecisionOut:
    return _decide(ctx, rt, invocation_id, approve=False, actor=actor, body=body)


def _decide(
    ctx: Ctx,
    rt: Runtime,
    invocation_id: str,
    *,
    approve: bool,
    actor: OperatorPrincipal,
    body: DecisionIn | None,
) -> DecisionOut:
    draft = body.create_rule if body else None
    inv = approvals.decide(
        ctx.engine,
        invocation_id=invocation_id,
        approve=approve,
        reason=body.why if body else "",
        actor=actor,
        create_rule=draft.spec_for if draft else None,
        hub=rt.hub,
    )
    return DecisionOut.of(inv)
