"""The hook path: /api/v1/external/invocations (the harness submits, polls, reports)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from atryum.gateway import service, waiting
from atryum.gateway.deps import Caller, Ctx, Runtime
from atryum.gateway.gate_pool import on_gate
from atryum.gateway.models import Invocation
from atryum.gateway.schemas import InvocationIn, InvocationOut, OutcomeIn

router = APIRouter(prefix="/api/v1/external/invocations", tags=["hook"])

MAX_WAIT = 30.0


@router.post(
    "",
    response_model=InvocationOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": InvocationOut, "description": "a repeated submission"}},
)
async def submit(
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
    inv, created = await on_gate(
        service.submit,
        ctx.engine,
        request=body.to_request(
            idempotency_key=idempotency_key, request_id=request_id, agent_id=agent_id
        ),
        caller=caller,
        defaults=rt.defaults,
        judge=rt.judge,
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
        return _json(await on_gate(read))
    return _json(await waiting.wait_while(rt.hub, read, invocation_id, timeout=wait))


@router.patch("/{invocation_id}", response_model=InvocationOut)
async def report(
    invocation_id: str, body: OutcomeIn, ctx: Ctx, rt: Runtime, caller: Caller
) -> Response:
    inv = await on_gate(
        service.report_outcome,
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
