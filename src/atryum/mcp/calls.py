"""A tool call that Atryum executes: gate it as the hook path does, wait, run it upstream, record.

The same `gateway.service.submit` decides it (rules, judge, human approval, expiry, audit,
identity), so an MCP client and a hook script get the same answer for the same call. Only an
approved call reaches the upstream, and only through `claim_execution` (approved → executing,
compare-and-set): one invocation runs at most once, whoever waits on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atryum.errors import Conflict
from atryum.gateway import service as gateway
from atryum.gateway import waiting
from atryum.gateway.gate_pool import on_gate
from atryum.gateway.models import (
    APPROVED,
    CANCELLED,
    DENIED,
    EXECUTING,
    EXPIRED,
    FAILED,
    PENDING,
    SUCCEEDED,
    Invocation,
)
from atryum.gateway.runtime import GatewayRuntime
from atryum.identity.tokens import AgentIdentity
from atryum.mcp.errors import UpstreamFailure
from atryum.mcp.models import Server

if TYPE_CHECKING:
    from atryum.mcp.pool import Pool

log = logging.getLogger("atryum.mcp")

EXECUTOR = "atryum-mcp"
PROGRESS_EVERY = 10.0
# The message a call's task is cancelled with when its client cancelled it (not a shutdown).
CLIENT_CANCEL = "cancelled by the MCP client"


@dataclass(frozen=True)
class ToolCall:
    server: Server
    tool: str
    arguments: dict[str, Any]
    request_id: str | None = None
    idempotency_key: str | None = None
    client_session_id: str | None = None
    client_name: str | None = None
    client_version: str | None = None
    agent_id: str | None = None  # the hint, used only while the caller is unauthenticated


@dataclass(frozen=True)
class Submitted:
    invocation: Invocation
    claimed: bool  # approved at once and claimed for execution (status executing)


async def submit(rt: GatewayRuntime, call: ToolCall, caller: AgentIdentity | None) -> Submitted:
    """Record and decide the call; one approved at once is claimed for execution with it."""
    request = gateway.CallRequest(
        source=call.server.name,
        tool=call.tool,
        input=call.arguments,
        request_id=call.request_id,
        idempotency_key=call.idempotency_key,
        client_session_id=call.client_session_id,
        client_name=call.client_name,
        client_version=call.client_version,
        agent_id=call.agent_id,
    )
    engine = rt.ctx.engine

    def decide() -> Submitted:
        inv, created = gateway.submit(
            engine,
            request=request,
            caller=caller,
            defaults=rt.defaults,
            judge=rt.judge,
            hub=rt.hub,
            executor=EXECUTOR,
        )
        return Submitted(inv, created and inv.status == EXECUTING)

    return await on_gate(decide)


def _claim(rt: GatewayRuntime, invocation_id: str) -> Invocation | None:
    return gateway.claim_execution(
        rt.ctx.engine, invocation_id=invocation_id, executor=EXECUTOR, hub=rt.hub
    )


async def finish(
    rt: GatewayRuntime,
    pool: Pool,
    call: ToolCall,
    submitted: Submitted,
    *,
    heartbeat: Callable[[], Awaitable[None]] | None = None,
) -> Invocation:
    """Wait for the decision, run the call if approved, and return the invocation as it ended.

    Cancelling this coroutine (the client cancelled) cancels a pending invocation, or records a
    running one as cancelled; it is never executed afterwards."""
    engine = rt.ctx.engine

    def read() -> Invocation:
        return gateway.get_invocation(engine, invocation_id=inv.id, hub=rt.hub)

    inv = submitted.invocation
    running = submitted.claimed
    try:
        if running:
            return await _execute(rt, pool, call, inv)
        if inv.status == PENDING:
            inv = await waiting.wait_while(
                rt.hub, read, inv.id, heartbeat=heartbeat, every=PROGRESS_EVERY
            )
        if inv.status == APPROVED:
            claimed = await on_gate(_claim, rt, inv.id)
            if claimed is not None:
                running = True
                return await _execute(rt, pool, call, claimed)
            inv = await on_gate(read)
        if inv.status == EXECUTING:  # another waiter runs it: wait for its outcome
            inv = await waiting.wait_while(
                rt.hub, read, inv.id, statuses=(EXECUTING, APPROVED), heartbeat=heartbeat
            )
        return inv
    except asyncio.CancelledError as stop:
        if stop.args[:1] == (CLIENT_CANCEL,):
            await _record(rt, inv.id, "cancelled", message="the MCP client cancelled the request")
        elif running:  # Atryum is stopping: a pending call stays pending, a running one ends
            await _record(
                rt, inv.id, "failed", error="Atryum stopped while the call ran; outcome unknown"
            )
        raise


async def _execute(rt: GatewayRuntime, pool: Pool, call: ToolCall, inv: Invocation) -> Invocation:
    try:
        result = await pool.get(call.server).request(
            "tools/call", {"name": call.tool, "arguments": call.arguments}
        )
    except UpstreamFailure as failure:
        return await _record(rt, inv.id, "failed", error=str(failure))
    status = "failed" if result.get("isError") else "completed"
    return await _record(rt, inv.id, status, result=result)


async def _record(
    rt: GatewayRuntime,
    invocation_id: str,
    execution_status: str,
    *,
    result: Any = None,
    error: str | None = None,
    message: str | None = None,
) -> Invocation:
    """Record an outcome; shielded, so a cancelled request still leaves a terminal status."""
    job = on_gate(
        gateway.report_outcome,
        rt.ctx.engine,
        invocation_id=invocation_id,
        execution_status=execution_status,
        result=result,
        error=error,
        message=message,
        hub=rt.hub,
    )
    try:
        return await asyncio.shield(job)
    except Conflict:  # decided meanwhile (e.g. denied while the cancel arrived)
        return await on_gate(gateway.get_invocation, rt.ctx.engine, invocation_id=invocation_id)


def tool_result(inv: Invocation, rules_text: str = "") -> dict[str, Any]:
    """The `tools/call` result a client gets for a finished invocation."""
    meta = {"atryum": {"invocation_id": inv.id, "status": inv.status}}
    if inv.status == SUCCEEDED or (inv.status == FAILED and isinstance(inv.result, dict)):
        result = dict(inv.result or {})
        result.setdefault("content", [])
        result["_meta"] = {**(result.get("_meta") or {}), **meta}
        return result
    reason = inv.approval.reason if inv.approval else ""
    if inv.status == DENIED:
        text = f"Atryum denied this call: {reason}."
    elif inv.status == EXPIRED:
        text = f"Atryum: the call expired waiting for approval ({reason}); it was not run."
    elif inv.status == CANCELLED:
        text = "Atryum: the call was cancelled; it was not run."
    elif inv.status == FAILED:
        text = f"Atryum could not run the call: {inv.error or 'the upstream failed'}"
    else:
        text = f"Atryum: the call is {inv.status}."
    if rules_text:
        text += "\n" + rules_text
    return {"content": [{"type": "text", "text": text}], "isError": True, "_meta": meta}


def background(coro: Awaitable[Invocation], tasks: set[asyncio.Task[Any]]) -> asyncio.Task[Any]:
    """Run a call as its own task: a client that goes away does not stop it."""

    async def guarded() -> Invocation:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("an MCP call failed")
            raise

    task = asyncio.create_task(guarded())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


async def shielded(coro: Awaitable[Invocation], tasks: set[asyncio.Task[Any]]) -> Invocation:
    """Wait for a call that goes on if this request is abandoned."""
    return await asyncio.shield(background(coro, tasks))
