"""The `/mcp/{server}` routes. The protocol (`proxy.py`) and the MCP SDK behind it are imported
on the first request, not at start-up: most Atryum processes never serve one."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from atryum.gateway.deps import Caller, Runtime
from atryum.mcp.runtime import Mcp, McpRuntime

router = APIRouter(tags=["mcp"])


@router.post("/mcp/{server}")
async def post(
    server: str,
    request: Request,
    rt: Runtime,
    caller: Caller,
    mcp: McpRuntime = Mcp,
    agent_id: str | None = Query(None, description="the agent's id while inbound auth is off"),
) -> Response:
    """One JSON-RPC message from an MCP client: `tools/call` is gated, the rest relayed."""
    from atryum.mcp import proxy

    return await proxy.post(server, request, rt, caller, mcp, agent_id)


@router.get("/mcp/{server}")
async def get(server: str, request: Request, mcp: McpRuntime = Mcp) -> Response:
    """The server-to-client stream: the upstream's notifications about the server as a whole
    (its tool, resource and prompt lists changed, a resource updated), pings in between.
    Atryum sends no requests to clients."""
    from atryum.mcp import proxy

    return await proxy.get(server, request, mcp)


@router.delete("/mcp/{server}")
async def delete(server: str, request: Request, mcp: McpRuntime = Mcp) -> Response:
    """Ends a client's session."""
    from atryum.mcp import proxy

    return await proxy.delete(server, request, mcp)
