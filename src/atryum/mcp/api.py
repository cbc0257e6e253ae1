"""HTTP routes of the MCP proxy: the servers registry (operator), `POST /api/v1/invocations`
(REST, Atryum executes) and `/mcp/{server}`. Including `router` also runs the upstream pool
in the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Header, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from atryum.errors import InvalidInput
from atryum.gateway import rules
from atryum.gateway.deps import Caller, Ctx, Operator, Runtime
from atryum.gateway.runtime import runtime_for
from atryum.gateway.schemas import InvocationOut
from atryum.limits import Text
from atryum.mcp import calls, routes, service, stale
from atryum.mcp import runtime as mcp_runtime_module
from atryum.mcp.errors import UpstreamFailure
from atryum.mcp.models import redact
from atryum.mcp.runtime import Mcp, McpRuntime


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ctx = app.state.ctx
    app.state.mcp = rt = await run_in_threadpool(mcp_runtime_module.start, ctx)
    sweeper = asyncio.create_task(stale.sweep(ctx.engine, runtime_for(ctx).hub))
    rt.tasks.add(sweeper)
    try:
        yield
    finally:
        await app.state.mcp.close()


router = APIRouter(lifespan=_lifespan)
servers = APIRouter(prefix="/api/v1/servers", tags=["mcp servers"])


class ServerIn(BaseModel):
    """A server as written. Secrets are write-only: omit `auth_token` (or send the mask) to keep
    the stored one, `""` to clear it; a header or env value equal to the mask keeps it."""

    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=256)
    mode: Literal["stdio", "http"] = "stdio"
    base_url: Text = ""
    command: Text = ""
    args: list[Text] = []
    env: dict[Text, Text] = {}
    auth_token: Text | None = None
    headers: dict[Text, Text] = {}
    timeout_seconds: int = Field(default=30, ge=1, le=service.MAX_TIMEOUT, strict=True)
    enabled: bool = Field(default=True, strict=True)

    def spec(self) -> service.ServerSpec:
        return service.ServerSpec(**self.model_dump())


class ServerOut(BaseModel):
    id: str
    name: str
    endpoint_slug: str
    endpoint: str
    mode: str
    base_url: str
    command: str
    args: list[str]
    env: dict[str, str]
    auth_token: str | None
    has_auth_token: bool
    headers: dict[str, str]
    timeout_seconds: int
    enabled: bool
    connection_status: str
    last_checked_at: datetime | None
    last_error_summary: str | None
    created_at: datetime
    updated_at: datetime


class ServerList(BaseModel):
    items: list[ServerOut]


class ToolOut(BaseModel):
    name: str
    description: str | None
    effective_action: str
    input_schema: dict[str, Any]


class ToolList(BaseModel):
    server: str
    agent_id: str | None
    items: list[ToolOut]


class TestOut(BaseModel):
    ok: bool
    connection_status: str
    tools: int
    error: str | None


def _out(server: Any) -> ServerOut:
    return ServerOut(**service.masked(server), endpoint=f"/mcp/{server.endpoint_slug}")


@servers.get("", response_model=ServerList)
def list_servers(ctx: Ctx) -> ServerList:
    return ServerList(items=[_out(s) for s in service.list_servers(ctx.engine)])


@servers.post("", response_model=ServerOut, status_code=status.HTTP_201_CREATED)
def create_server(body: ServerIn, ctx: Ctx, operator: Operator, mcp: McpRuntime = Mcp) -> ServerOut:
    created = service.create_server(ctx.engine, spec=body.spec(), actor=operator)
    mcp.forget_lookups()
    return _out(created)


@servers.get("/{name}", response_model=ServerOut)
def get_server(name: str, ctx: Ctx) -> ServerOut:
    return _out(service.get_server(ctx.engine, name=name))


@servers.put("/{name}", response_model=ServerOut)
def replace_server(
    name: str, body: ServerIn, ctx: Ctx, operator: Operator, mcp: McpRuntime = Mcp
) -> ServerOut:
    replaced = service.replace_server(ctx.engine, name=name, spec=body.spec(), actor=operator)
    mcp.forget_lookups()
    return _out(replaced)


@servers.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={200: {"model": ServerOut, "description": "disabled (`?mode=disable`)"}},
)
async def delete_server(
    name: str,
    ctx: Ctx,
    operator: Operator,
    mcp: McpRuntime = Mcp,
    mode: Literal["delete", "disable"] = "delete",
) -> Response:
    old = await run_in_threadpool(service.get_server, ctx.engine, name=name)
    kept = await run_in_threadpool(
        service.delete_server, ctx.engine, name=name, disable=mode == "disable", actor=operator
    )
    mcp.forget_lookups()
    await mcp.pool.drop(old.id)
    if kept is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return Response(_out(kept).model_dump_json(), media_type="application/json")


@servers.get("/{name}/tools", response_model=ToolList)
async def server_tools(
    name: str,
    ctx: Ctx,
    rt: Runtime,
    mcp: McpRuntime = Mcp,
    agent_id: str | None = Query(None, description="show the actions this agent's calls get"),
) -> ToolList:
    server = await run_in_threadpool(service.get_server, ctx.engine, name=name)
    try:
        listing = await _all_tools(mcp, server)
    except UpstreamFailure as exc:
        raise InvalidInput(f"could not list the tools: {exc}") from None
    actions = await run_in_threadpool(
        rules.actions_for_caller,
        ctx.engine,
        source=server.name,
        tools=[t["name"] for t in listing],
        agent_id=agent_id,
        defaults=rt.defaults,
    )
    return ToolList(
        server=server.name,
        agent_id=agent_id,
        items=[
            ToolOut(
                name=t["name"],
                description=t.get("description"),
                effective_action=actions[t["name"]],
                input_schema=t.get("inputSchema") or {},
            )
            for t in listing
        ],
    )


async def _all_tools(mcp: McpRuntime, server: Any, max_pages: int = 50) -> list[dict[str, Any]]:
    up = mcp.pool.get(server)
    tools: list[dict[str, Any]] = []
    cursor = None
    for _ in range(max_pages):
        page = await up.request("tools/list", {"cursor": cursor} if cursor else None)
        tools += [t for t in page.get("tools", []) if isinstance(t, dict) and "name" in t]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    return tools


@servers.post("/{name}/test", response_model=TestOut)
async def test_server(name: str, ctx: Ctx, mcp: McpRuntime = Mcp) -> TestOut:
    """Connect (start the process or reach the URL), initialise and list the tools."""
    server = await run_in_threadpool(service.get_server, ctx.engine, name=name)
    try:
        tools = await _all_tools(mcp, server)
    except UpstreamFailure as exc:
        error = redact(str(exc), server.secrets())
        await run_in_threadpool(
            service.record_status, ctx.engine, server_id=server.id, status="error", error=error
        )
        return TestOut(ok=False, connection_status="error", tools=0, error=error)
    await run_in_threadpool(
        service.record_status, ctx.engine, server_id=server.id, status="connected", error=None
    )
    return TestOut(ok=True, connection_status="connected", tools=len(tools), error=None)


# -- REST: Atryum executes ----------------------------------------------------------------------


class RestCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    server: Text = Field(default="", max_length=256)
    tool: Text = Field(default="", max_length=512)
    input: dict[str, Any] = {}
    request_id: Text | None = Field(default=None, max_length=256)
    idempotency_key: Text | None = Field(default=None, max_length=256)
    agent_id: Text | None = Field(default=None, max_length=256)


@router.post("/api/v1/invocations", response_model=InvocationOut, tags=["mcp"])
async def invoke(
    body: RestCallIn,
    ctx: Ctx,
    rt: Runtime,
    caller: Caller,
    mcp: McpRuntime = Mcp,
    wait: bool = Query(True, description="false: answer at once and poll the invocation"),
    x_request_id: str | None = Header(None, max_length=256),
    idempotency_key: str | None = Header(None, max_length=256),
) -> Response:
    """Gate a tool call of an upstream MCP server and, if approved, run it there. 200 with the
    invocation whatever the outcome; blocks until it finished unless `wait=false`."""
    missing = [k for k in ("server", "tool") if not getattr(body, k).strip()]
    if missing:
        raise InvalidInput(f"missing field(s): {', '.join(missing)}")
    found = await mcp.lookup(body.server)
    if isinstance(found, str):
        raise InvalidInput(found)
    call = calls.ToolCall(
        server=found,
        tool=body.tool,
        arguments=body.input,
        request_id=body.request_id or x_request_id,
        idempotency_key=body.idempotency_key or idempotency_key,
        agent_id=body.agent_id,
    )
    submitted = await calls.submit(rt, call, caller)
    inv = submitted.invocation
    finishing = calls.finish(rt, mcp.pool, call, submitted)
    if wait:
        inv = await calls.shielded(finishing, mcp.tasks)
    else:
        calls.background(finishing, mcp.tasks)
    return Response(InvocationOut.of(inv).model_dump_json(), media_type="application/json")


router.include_router(servers)
router.include_router(routes.router)
