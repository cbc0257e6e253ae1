"""The hook path: /api/v1/external/invocations (the harness submits, polls, reports)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from starlette.concurrency import run_in_threadpool

from atryum.db.types import utcnow
from atryum.gateway import service
from atryum.gateway.deps import Caller, Ctx, Runtime
from atryum.gateway.models import PENDING, Invocation
from atryum.gateway.schemas import InvocationIn, InvocationOut, OutcomeIn

router = APIRouter(prefix="/api/v1/external/invocations", tags=["hook"])

MAX_WAIT = 30.0
# A waiter re-reads at least this often, whatever the wake-ups do: rarely when PostgreSQL
# NOTIFY delivers every replica's changes, often when another process could share a SQLite file.
RECHECK_NOTIFIED = 5.0
RECHECK_LOCAL = 1.0


@router.post(
    "",
    response_model=InvocationOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": InvocationOut, "description": "a repeated submission"}},
)
def submit(
    body: InvocationIn,
    ctx: Ctx,
    rt: Runtime,
    caller: Caller,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", max_length=256, description="if the body has none"),
    ] = None,
    request_id: Annotated[
        str | None, Header(alias="X-Request-Id", max_length=256, description="if the body has none")
    ] = None,
    agent_id: Annotated[
        str | None, Query(max_length=256, description="if the body has none")
    ] = None,
) -> Response:
    inv, created = service.submit(
        ctx.engine,
        request=body.to_request(
            idempotency_key=idempotency_key, request_id=request_id, agent_id=agent_id
        ),
        caller=caller,
        defaults=rt.defaults,
        hub=rt.hub,
    )
    return _json(inv, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _json(inv: Invocation, code: int = status.HTTP_200_OK) -> Response:
    """The invocation JSON, serialised once (the hook path skips response-model re-validation)."""
    return Response(
        InvocationOut.of(inv).model_dump_json(), status_code=code, media_type="application/json"
    )


@router.get("/{invocation_id}", response_model=InvocationOut)
async def get(
    invocation_id: str,
    ctx: Ctx,
    rt: Runtime,
    caller: Caller,
    wait: float = Query(0, ge=0, le=MAX_WAIT, description="long-poll up to N s while pending"),
) -> Response:
    def read() -> Invocation:
        return service.get_invocation(
            ctx.engine, invocation_id=invocation_id, caller=caller, hub=rt.hub
        )

    if wait <= 0:
        return _json(await run_in_threadpool(read))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    sub = rt.hub.subscribe()  # before the first read, so no change slips between the two
    try:
        while True:
            inv = await run_in_threadpool(read)
            left = deadline - loop.time()
            if inv.status != PENDING or left <= 0:
                return _json(inv)
            expires = inv.approval.expires_at if inv.approval else None
            if expires is not None:
                left = min(left, max((expires - utcnow()).total_seconds(), 0) + 0.01)
            recheck = RECHECK_NOTIFIED if rt.hub.via_database else RECHECK_LOCAL
            await sub.wait_for(lambda c: c.invocation_id == invocation_id, min(left, recheck))
    finally:
        rt.hub.unsubscribe(sub)


@router.patch("/{invocation_id}", response_model=InvocationOut)
def report(invocation_id: str, body: OutcomeIn, ctx: Ctx, rt: Runtime, caller: Caller) -> Response:
    inv = service.report_outcome(
        ctx.engine,
        invocation_id=invocation_id,
        execution_status=body.execution_status,
        result=body.result,
        error=body.error,
        message=body.message,
        caller=caller,
        hub=rt.hub,
    )
    return _json(inv)
