"""The `/mcp/{server}` routes. The protocol (`proxy.py`) and the MCP SDK behind it are imported
on the first request, not at start-up: most Atryum processes never serve one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from atryum.gateway.deps import gate_of
from atryum.hot_routes import HotPaths, Param, param
from atryum.mcp.runtime import Mcp, McpRuntime, mcp_runtime

router = APIRouter(tags=["mcp"])
hot = HotPaths(router)


SERVER = Param("path", "server", "the upstream server's name")
AGENT_ID = Param("query", "agent_id", "the agent's id while inbound auth is off")


@hot.route("POST", "/mcp/{server}", params=(SERVER, AGENT_ID))
async def post(request: Request) -> Response:
    """One JSON-RPC message from an MCP client: `tools/call` is gated, the rest relayed."""
    from atryum.mcp import proxy

    _, rt, caller = await gate_of(request)
    server = request.path_params[SERVER.name]
    mcp = await mcp_runtime(request)
    return await proxy.post(server, request, rt, caller, mcp, param(request, AGENT_ID))


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
