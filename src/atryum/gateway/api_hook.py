"""The hook path: /api/v1/external/invocations (the harness submits, polls, reports)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from atryum.gateway import service, waiting
from atryum.gateway.deps import Caller, Ctx, Runtime, gate_of
from atryum.gateway.gate_pool import on_gate
from atryum.gateway.models import Invocation
from atryum.gateway.schemas import InvocationIn, InvocationOut, OutcomeIn
from atryum.hot_routes import HotPaths, Param, body, param

router = APIRouter(prefix="/api/v1/external/invocations", tags=["hook"])
hot = HotPaths(router)

MAX_WAIT = 30.0


IDEMPOTENCY_KEY = Param("header", "Idempotency-Key", "if the body has none", max_length=256)
REQUEST_ID = Param("header", "X-Request-Id", "if the body has none", max_length=256)
AGENT_ID = Param("query", "agent_id", "if the body has none", max_length=256)
INVOCATION_ID = Param("path", "invocation_id", "the invocation's id")


@hot.route(
    "POST",
    "",
    body=InvocationIn,
    params=(IDEMPOTENCY_KEY, REQUEST_ID, AGENT_ID),
    response_model=InvocationOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": InvocationOut, "description": "a repeated submission"}},
)
async def submit(request: Request) -> Response:
    ctx, rt, caller = await gate_of(request)
    call = (await body(request, InvocationIn)).to_request(
        idempotency_key=param(request, IDEMPOTENCY_KEY),
        request_id=param(request, REQUEST_ID),
        agent_id=param(request, AGENT_ID),
    )
    inv, created = await on_gate(
        service.submit,
        ctx.engine,
        request=call,
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


@hot.route(
    "PATCH",
    "/{invocation_id}",
    body=OutcomeIn,
    params=(INVOCATION_ID,),
    response_model=InvocationOut,
)
async def report(request: Request) -> Response:
    ctx, rt, caller = await gate_of(request)
    outcome = await body(request, OutcomeIn)
    inv = await on_gate(
        service.report_outcome,
        ctx.engine,
        invocation_id=request.path_params[INVOCATION_ID.name],
        execution_status=outcome.execution_status,
        result=outcome.result,
        error=outcome.error,
        message=outcome.message,
        caller=caller,
        hub=rt.hub,
    )
    return _json(inv)
