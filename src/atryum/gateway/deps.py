"""Request-scoped helpers of the gateway routes: context, runtime, inbound identity, operator.

They are `async def` on purpose: they never block, and FastAPI runs a plain `def` dependency in
its thread pool, a hop that costs more than the work on the hook path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from atryum.context import AppContext
from atryum.gateway.runtime import GatewayRuntime, runtime_for
from atryum.identity.operators import operator_of
from atryum.identity.principal import OperatorPrincipal


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


async def operator_id(request: Request) -> OperatorPrincipal:
    """The operator the identity gate admitted (never a body field): who they are, how they
    authenticated, their role. Pass it on as `actor=` to service functions that change state."""
    return operator_of(request)


Ctx = Annotated[AppContext, Depends(get_ctx)]
Runtime = Annotated[GatewayRuntime, Depends(get_runtime)]
Caller = Annotated[str | None, Depends(inbound_identity)]
Operator = Annotated[OperatorPrincipal, Depends(operator_id)]
