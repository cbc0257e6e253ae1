"""Request-scoped helpers of the gateway routes: runtime, inbound identity, operator."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from atryum.context import AppContext, get_ctx
from atryum.gateway.runtime import GatewayRuntime, runtime_for


def get_runtime(request: Request) -> GatewayRuntime:
    return runtime_for(request.app.state.ctx)


def inbound_identity(request: Request) -> str | None:
    """The authenticated agent identity of a hook call, or None while inbound auth is off.

    Atryum has no inbound agent authentication yet, so the body's `agent_id` is honoured
    (spec §2). When it lands, return the verified identity here: it then replaces `agent_id`
    and confines the caller to its own invocations.
    """
    return None


def operator_id(request: Request) -> str:
    """Who approves or denies. Never a body field; the authenticated operator once admin auth
    exists."""
    return "operator"


Ctx = Annotated[AppContext, Depends(get_ctx)]
Runtime = Annotated[GatewayRuntime, Depends(get_runtime)]
Caller = Annotated[str | None, Depends(inbound_identity)]
Operator = Annotated[str, Depends(operator_id)]
