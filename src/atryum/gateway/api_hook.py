"""The hook path: /api/v1/external/invocations (the harness submits, polls, reports)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Response, status
from starlette.concurrency import run_in_threadpool

from atryum.db.types import utcnow
from atryum.gateway import service
from atryum.gateway.deps import Caller, Ctx, Runtime
from atryum.gateway.models import PENDING, Invocation
from atryum.gateway.schemas import InvocationIn, InvocationOut, OutcomeIn

router = APIRouter(prefix="/api/v1/external/invocations", tags=["hook"])

MAX_WAIT = 30.0
RECHECK = 5.0  # a waiter re-reads at least this often, whatever the wake-ups do


@router.post(
    "",
    response_model=InvocationOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": InvocationOut, "description": "a repeated submission"}},
)
def submit(
    body: InvocationIn, response: Response, ctx: Ctx, rt: Runtime, caller: Caller
) -> InvocationOut:
    inv, created = service.submit(
        ctx.engine,
        request=body.to_request(),
        caller=caller,
        defaults=rt.defaults,
        hub=rt.hub,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return InvocationOut.of(inv)


@router.get("/{invocation_id}", response_model=InvocationOut)
async def get(
    invocation_id: str,
    ctx: Ctx,
    rt: Runtime,
    caller: Caller,
    wait: float = Query(0, ge=0, le=MAX_WAIT, description="long-poll up to N s while pending"),
) -> InvocationOut:
    def read() -> Invocation:
        return service.get_invocation(
            ctx.engine, invocation_id=invocation_id, caller=caller, hub=rt.hub
        )

    if wait <= 0:
        return InvocationOut.of(await run_in_threadpool(read))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    sub = rt.hub.subscribe()  # before the first read, so no change slips between the two
    try:
        while True:
            inv = await run_in_threadpool(read)
            left = deadline - loop.time()
            if inv.status != PENDING or left <= 0:
                return InvocationOut.of(inv)
            expires = inv.approval.expires_at if inv.approval else None
            if expires is not None:
                left = min(left, max((expires - utcnow()).total_seconds(), 0) + 0.01)
            await sub.wait_for(lambda c: c.invocation_id == invocation_id, min(left, RECHECK))
    finally:
        rt.hub.unsubscribe(sub)


@router.patch("/{invocation_id}", response_model=InvocationOut)
def report(
    invocation_id: str, body: OutcomeIn, ctx: Ctx, rt: Runtime, caller: Caller
) -> InvocationOut:
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
    return InvocationOut.of(inv)
