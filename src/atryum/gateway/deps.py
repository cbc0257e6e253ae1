"""Request-scoped helpers of the gateway routes: context, runtime, inbound identity, operator.

They are `async def` on purpose: they never block, and FastAPI runs a plain `def` dependency in
its thread pool, a hop that costs more than the work on the hook path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from atryum.context import AppContext, get_ctx
from atryum.gateway.runtime import GatewayRuntime, runtime_for
from atryum.identity.inbound import agent_caller
from atryum.identity.operators import operator_of
from atryum.identity.principal import OperatorPrincipal
from atryum.identity.tokens import AgentIdentity


async def get_runtime(request: Request) -> GatewayRuntime:
    return runtime_for(request.app.state.ctx)


async def inbound_identity(request: Request) -> AgentIdentity | None:
    """The verified agent of an agent route, or None while no [[auth]] block is enabled (the
    body/query `agent_id` hint applies then). With auth on, a missing, invalid or under-scoped
    token never gets here: 401/403 with a Bearer challenge (identity.md §1). A verified
    identity replaces `agent_id` and confines the caller to its own invocations."""
    return await agent_caller(request)


async def gate_of(request: Request) -> tuple[AppContext, GatewayRuntime, AgentIdentity | None]:
    """What `Ctx`, `Runtime` and `Caller` give a FastAPI route, for a hot one (`hot_routes`)."""
    ctx: AppContext = request.app.state.ctx
    return ctx, runtime_for(ctx), await agent_caller(request)


async def operator_id(request: Request) -> OperatorPrincipal:
    """The operator the identity gate admitted (never a body field): who they are, how they
    authenticated, their role. Pass it on as `actor=` to service functions that change state."""
    return operator_of(request)


Ctx = Annotated[AppContext, Depends(get_ctx)]
Runtime = Annotated[GatewayRuntime, Depends(get_runtime)]
Caller = Annotated[AgentIdentity | None, Depends(inbound_identity)]
Operator = Annotated[OperatorPrincipal, Depends(operator_id)]
