"""Request-scoped helpers of the gateway routes: context, runtime, inbound identity, operator.

They are `async def` on purpose: they never block, and FastAPI runs a plain `def` dependency in
its thread pool, a hop that costs more than the work on the hook path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from atryum.context import AppContext
from atryum.gateway.runtime import GatewayRuntime, runtime_for


async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_runtime(request: Request) -> GatewayRuntime:
    return runtime_for(request.app.state.ctx)


async def inbound_identity(request: Request) -> str | None:
    """The authenticated agent identity of a hook call, or None while inbound auth is off.

    Atryum has no inbound agent authentication yet, so the body's `agent_id` is honoured
    (spec §2). When it lands, return the verified identity here: it then replaces `agent_id`
    and confines the caller to its own invocations.
    """
    return None


async def operator_id(request: Request) -> str:
    """Who approves or denies: never a body field; the authenticated operator once admin
    authentication exists."""
    return "operator"


Ctx = Annotated[AppContext, Depends(get_ctx)]
Runtime = Annotated[GatewayRuntime, Depends(get_runtime)]
Caller = Annotated[str | None, Depends(inbound_identity)]
Operator = Annotated[str, Depends(operator_id)]
