"""Page routes of the MCP servers: the list with connection status, and the add/edit form with
the server's tools and the action each gets for a chosen agent.

Reads go through the services; every change, test and tool listing is made by the pages'
JavaScript through `/api/v1/servers`, the one write path. Secrets are never rendered: the
form shows which ones are set, and leaves them unchanged unless the operator types new ones.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from atryum.agents import service as agents
from atryum.agents.store import AgentFilter
from atryum.context import AppContext, get_ctx
from atryum.mcp import service
from atryum.mcp.models import MASK
from atryum.web.gateway_ui import PICKER_SIZE
from atryum.web.render import not_found, page

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(get_ctx)]


def _agent_choices(ctx: AppContext) -> dict[str, Any]:
    """The first live agents that present a runtime id (what `tools?agent_id=` resolves); the
    page's script searches the rest as the operator types (GET /api/v1/agents?q=)."""
    found, total = agents.page_agents(
        ctx.engine, flt=AgentFilter(state="active"), offset=0, limit=PICKER_SIZE
    )
    return {
        "agents": [{"name": a.name, "agent_id": a.agent_ids[0]} for a in found if a.agent_ids],
        "agents_total": total,
        "picker_size": PICKER_SIZE,
    }


@router.get("/ui/servers")
def servers_page(ctx: Ctx, notice: str = "") -> HTMLResponse:
    rows = [service.masked(s) for s in service.list_servers(ctx.engine)]
    notices = {"deleted": "Server deleted.", "saved": "Server saved."}
    return page(
        ctx,
        "servers.html",
        title="MCP servers",
        nav="servers",
        rows=rows,
        notice=notices.get(notice, ""),
    )


def _form(ctx: AppContext, server: dict[str, Any] | None) -> HTMLResponse:
    title = f"MCP server {server['name']}" if server else "New MCP server"
    return page(
        ctx,
        "server.html",
        title=title,
        nav="servers",
        server=server,
        mask=MASK,
        **_agent_choices(ctx),
    )


@router.get("/ui/servers/new")
def new_server_page(ctx: Ctx) -> HTMLResponse:
    return _form(ctx, None)


@router.get("/ui/servers/{name}")
def server_page(name: str, ctx: Ctx) -> HTMLResponse:
    found = service.find_server(ctx.engine, name=name)
    if found is None:
        return not_found(ctx, f"There is no MCP server {name!r}.")
    return _form(ctx, service.masked(found))
