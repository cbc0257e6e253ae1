"""`/mcp/{server}` (routed by `routes.py`): the MCP endpoint clients connect to instead of the
upstream server.

One endpoint serves both protocol eras. Handshake era (2024-11-05 … 2025-11-25): `initialize`
opens a session whose `Mcp-Session-Id` Atryum issues. Stateless era (2026-07-28): every request
carries its envelope in `params._meta`, checked with the SDK's own inbound ladder against the
`MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers. Minimal clients are served as the
Go original serves them: no `Accept`, no or an unknown session id → a plain JSON exchange; SSE
only for clients that accept it.

`tools/list` annotates each tool with the action this caller's call would get; `tools/call` is
gated (`calls.py`); everything else is relayed to the upstream as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import mcp_types as types
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
)
from mcp_types import (
    CLIENT_INFO_META_KEY,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
)
from mcp_types.methods import CACHEABLE_METHODS
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)

from atryum.gateway import rules
from atryum.gateway import service as gateway_service
from atryum.gateway.gate_pool import on_gate
from atryum.gateway.runtime import GatewayRuntime
from atryum.identity.tokens import AgentIdentity
from atryum.mcp import calls
from atryum.mcp.errors import UpstreamError, UpstreamFailure
from atryum.mcp.models import Server
from atryum.mcp.pool import CLIENT_INFO
from atryum.mcp.runtime import ClientSessionInfo, McpRuntime

SESSION_HEADER = "mcp-session-id"
RULES_TOOL = "atryum_rules_get"
SSE_PING = 15.0
# Envelope keys of the 2026 `_meta` that belong to this hop, not to the upstream's.
_ENVELOPE_PREFIX = "io.modelcontextprotocol/"


def _rpc(rid: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def _rpc_error(
    rid: Any, code: int, message: str, *, status: int = 200, data: Any = None
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    body = {"jsonrpc": "2.0", "id": rid, "error": error}
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), media_type="application/json", headers=headers)


def _accepts_sse(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def _sse(message: dict[str, Any]) -> str:
    return f"event: message\ndata: {json.dumps(message)}\n\n"


class Exchange:
    """One JSON-RPC request to `/mcp/{server}` and what it is served with."""

    def __init__(
        self,
        *,
        request: Request,
        message: dict[str, Any],
        server: Server,
        gateway: GatewayRuntime,
        mcp: McpRuntime,
        caller: AgentIdentity | None,
        agent_hint: str | None,
    ) -> None:
        self.request = request
        self.rid = message.get("id")
        self.method: str = message["method"]
        self.params: dict[str, Any] = message.get("params") or {}
        self.server = server
        self.gateway = gateway
        self.mcp = mcp
        # who the rules see: the verified agent, else the `?agent_id=` hint
        self.agent_id = caller.agent_id if caller is not None else agent_hint
        self.issuer = caller.issuer if caller is not None else None
        self.caller = caller
        self.agent_hint = agent_hint
        meta = self.params.get("_meta")
        self.meta: dict[str, Any] = meta if isinstance(meta, dict) else {}
        header_version = request.headers.get("mcp-protocol-version", "")
        self.modern = (
            self.method == "server/discover"
            or header_version in MODERN_PROTOCOL_VERSIONS
            or self.meta.get(PROTOCOL_VERSION_META_KEY) in MODERN_PROTOCOL_VERSIONS
        )
        self.session_id = None if self.modern else request.headers.get(SESSION_HEADER)
        self.session = mcp.sessions.get(self.session_id) if self.session_id else None

    @property
    def upstream(self) -> Any:
        return self.mcp.pool.get(self.server)

    def upstream_params(self) -> dict[str, Any] | None:
        """The params as the upstream gets them: without this hop's 2026 envelope."""
        params = dict(self.params)
        meta = {k: v for k, v in self.meta.items() if not k.startswith(_ENVELOPE_PREFIX)}
        params.pop("_meta", None)
        if meta:
            params["_meta"] = meta
        return params or None

    def result(self, result: dict[str, Any]) -> dict[str, Any]:
        if self.modern:
            result.setdefault("resultType", "complete")
            if self.method in CACHEABLE_METHODS:
                result.setdefault("ttlMs", 0)
                result.setdefault("cacheScope", "private")  # annotated per caller
        return _rpc(self.rid, result)

    def client(self) -> tuple[str | None, str | None]:
        if self.session is not None:
            return self.session.client_name, self.session.client_version
        info = self.meta.get(CLIENT_INFO_META_KEY)
        if isinstance(info, dict):
            return info.get("name"), info.get("version")
        return None, None

    def upstream_error(self, exc: UpstreamFailure) -> Response:
        if isinstance(exc, UpstreamError):
            return _rpc_error(self.rid, exc.error.code, str(exc), data=exc.error.data)
        return _rpc_error(self.rid, INTERNAL_ERROR, str(exc))


async def post(
    server: str,
    request: Request,
    rt: GatewayRuntime,
    caller: AgentIdentity | None,
    mcp: McpRuntime,
    agent_id: str | None,
) -> Response:
    try:
        message = json.loads(await request.body())
    except (ValueError, RecursionError):
        return _rpc_error(None, PARSE_ERROR, "the body is not valid JSON", status=400)
    if isinstance(message, list):
        return _rpc_error(
            None,
            INVALID_REQUEST,
            "JSON-RPC batches are not supported: send one message per request",
            status=400,
        )
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        if isinstance(message, dict) and ("result" in message or "error" in message):
            return Response(status_code=202)  # a reply to nothing Atryum asked: accepted
        return _rpc_error(
            None, INVALID_REQUEST, "expected a JSON-RPC request or notification", status=400
        )
    found = await mcp.lookup(server)
    if isinstance(found, str):
        return _rpc_error(message.get("id"), INVALID_REQUEST, found, status=404)
    if "params" in message and not isinstance(message["params"], dict | None):
        return _rpc_error(message.get("id"), INVALID_PARAMS, "params must be an object")
    ex = Exchange(
        request=request,
        message=message,
        server=found,
        gateway=rt,
        mcp=mcp,
        caller=caller,
        agent_hint=agent_id,
    )
    if ex.method.startswith("notifications/") or "id" not in message:
        return await _notification(ex)
    if ex.modern:
        headers = dict(request.headers)
        routed = "mcp-method" in headers or "mcp-protocol-version" in headers
        verdict = classify_inbound_request(message, headers=headers if routed else None)
        if isinstance(verdict, InboundLadderRejection):
            status = ERROR_CODE_HTTP_STATUS.get(verdict.code, 400)
            return _rpc_error(
                ex.rid, verdict.code, verdict.message, status=status, data=verdict.data
            )
    handler = _HANDLERS.get(ex.method, _relay)
    try:
        return await handler(ex)
    except UpstreamFailure as exc:
        return ex.upstream_error(exc)


async def _notification(ex: Exchange) -> Response:
    """Notifications are acknowledged with 202 (`notifications/initialized` even with an id)."""
    if ex.method == "notifications/cancelled":
        key = (ex.request.headers.get(SESSION_HEADER) or "", json.dumps(ex.params.get("requestId")))
        task = ex.mcp.inflight.get(key)
        if task is not None:
            task.cancel(calls.CLIENT_CANCEL)
    elif ex.method != "notifications/initialized":
        with contextlib.suppress(Exception):
            session = await ex.upstream.session()
            await session.send_notification(_notification_model(ex.method, ex.upstream_params()))
    return Response(status_code=202)


def _notification_model(method: str, params: dict[str, Any] | None) -> Any:
    return types.Notification[dict[str, Any] | None, str](method=method, params=params)


async def _capabilities(ex: Exchange) -> tuple[dict[str, Any], str | None]:
    """The upstream's capabilities (it is started now, on first use), tools always included."""
    session = await ex.upstream.session()
    init = session.initialize_result
    caps: dict[str, Any] = {}
    instructions = None
    if init is not None:
        caps = init.capabilities.model_dump(by_alias=True, exclude_none=True, mode="json")
        instructions = init.instructions
    caps.pop("experimental", None)
    caps["tools"] = {"listChanged": False}
    return caps, instructions


def _server_info(ex: Exchange) -> dict[str, Any]:
    return {"name": f"atryum/{ex.server.name}", "version": CLIENT_INFO.version}


async def _initialize(ex: Exchange) -> Response:
    requested = ex.params.get("protocolVersion")
    version = LATEST_HANDSHAKE_VERSION
    if isinstance(requested, str) and requested in HANDSHAKE_PROTOCOL_VERSIONS:
        version = requested
    caps, instructions = await _capabilities(ex)
    info = ex.params.get("clientInfo")
    if not isinstance(info, dict):
        info = {}
    session_id = uuid.uuid4().hex
    ex.mcp.remember(
        session_id,
        ClientSessionInfo(
            protocol_version=version,
            client_name=info.get("name"),
            client_version=info.get("version"),
        ),
    )
    result: dict[str, Any] = {
        "protocolVersion": version,
        "capabilities": caps,
        "serverInfo": _server_info(ex),
    }
    if instructions:
        result["instructions"] = instructions
    return _json(_rpc(ex.rid, result), headers={"Mcp-Session-Id": session_id})


async def _discover(ex: Exchange) -> Response:
    caps, instructions = await _capabilities(ex)
    result: dict[str, Any] = {
        "supportedVersions": list(KNOWN_PROTOCOL_VERSIONS),
        "capabilities": caps,
        "_meta": {SERVER_INFO_META_KEY: _server_info(ex)},
    }
    if instructions:
        result["instructions"] = instructions
    return _json(ex.result(result))


async def _relay(ex: Exchange) -> Response:
    result = await ex.upstream.request(ex.method, ex.upstream_params())
    return _json(ex.result(result))


async def _tools_list(ex: Exchange) -> Response:
    result = await ex.upstream.request("tools/list", ex.upstream_params())
    tools = [t for t in result.get("tools", []) if isinstance(t, dict) and "name" in t]
    if "cursor" not in ex.params:
        tools.append(_rules_tool())
    actions = await on_gate(
        rules.actions_for_caller,
        ex.gateway.ctx.engine,
        source=ex.server.name,
        tools=[t["name"] for t in tools],
        agent_id=ex.agent_id,
        issuer=ex.issuer,
        defaults=ex.gateway.defaults,
    )
    for tool in tools:
        action = "auto_approve" if tool["name"] == RULES_TOOL else actions[tool["name"]]
        tool["annotations"] = {
            **_dict(tool.get("annotations")),
            "atryum": {"effective_action": action},
        }
        tool["_meta"] = {**_dict(tool.get("_meta")), "atryum/effective_action": action}
    result["tools"] = tools
    return _json(ex.result(result))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _rules_tool() -> dict[str, Any]:
    return {
        "name": RULES_TOOL,
        "description": (
            "What Atryum's rules say about this server's tools for you: the action each call "
            "would get (auto_approve, auto_deny, human_approval, ai_evaluation) and the rules "
            "that apply. Optional `tool` narrows it to one tool."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {"tool": {"type": "string", "description": "one tool's name"}},
        },
    }


def _rules_text(ex: Exchange, tool: str) -> str:
    found = rules.rules_for_caller(
        ex.gateway.ctx.engine,
        source=ex.server.name,
        tool=tool,
        agent_id=ex.agent_id,
        issuer=ex.issuer,
        defaults=ex.gateway.defaults,
    )
    lines = [f"Decision by the rules today: {found.decision.outcome} ({found.decision.reason})."]
    if found.rules:
        lines.append("Rules that apply, in order:")
        for view in found.rules:
            r = view.rule
            label = r.description or r.id
            lines.append(
                f"- {label} [{r.action}] servers={r.server_patterns or ['*']} "
                f"tools={r.tool_patterns or ['*']}"
            )
    else:
        lines.append("No rule applies; the default policy decides.")
    return "\n".join(lines)


async def _rules_get(ex: Exchange, arguments: dict[str, Any]) -> Response:
    tool = arguments.get("tool")
    listing = await ex.upstream.request("tools/list", None)
    names = [t["name"] for t in listing.get("tools", []) if isinstance(t, dict) and "name" in t]
    if isinstance(tool, str) and tool:
        names = [tool]
    actions = await on_gate(
        rules.actions_for_caller,
        ex.gateway.ctx.engine,
        source=ex.server.name,
        tools=names,
        agent_id=ex.agent_id,
        issuer=ex.issuer,
        defaults=ex.gateway.defaults,
    )
    payload: dict[str, Any] = {"server": ex.server.name, "tools": actions}
    text = json.dumps(payload, indent=2)
    if isinstance(tool, str) and tool:
        text += "\n" + await on_gate(_rules_text, ex, tool)
    result = {"content": [{"type": "text", "text": text}], "structuredContent": payload}
    return _json(ex.result(result))


async def _tools_call(ex: Exchange) -> Response:
    name = ex.params.get("name")
    arguments = ex.params.get("arguments") or {}
    if not isinstance(name, str) or not name or not isinstance(arguments, dict):
        return _rpc_error(
            ex.rid, INVALID_PARAMS, "tools/call needs a tool name and an arguments object"
        )
    if name == RULES_TOOL:
        return await _rules_get(ex, arguments)
    client_name, client_version = ex.client()
    scoped = f"{ex.session_id}:{json.dumps(ex.rid)}" if ex.session_id else None
    call = calls.ToolCall(
        server=ex.server,
        tool=name,
        arguments=arguments,
        request_id=scoped,
        # A retry of the same request (a reconnect, a restart of Atryum) resumes the call,
        # whatever became of it meanwhile: approved, it runs once; finished, its result returns.
        idempotency_key=f"mcp:{scoped}" if scoped else None,
        client_session_id=ex.session_id,
        client_name=client_name,
        client_version=client_version,
        agent_id=ex.agent_hint,
    )
    submitted = await calls.submit(ex.gateway, call, ex.caller)
    inv = submitted.invocation
    token = ex.meta.get("progressToken")
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        beats += 1
        events.put_nowait(
            {
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {
                    "progressToken": token,
                    "progress": beats,
                    "message": f"waiting for approval of invocation {inv.id}",
                },
            }
        )

    streaming = token is not None and _accepts_sse(ex.request)
    task = calls.background(
        calls.finish(
            ex.gateway, ex.mcp.pool, call, submitted, heartbeat=heartbeat if streaming else None
        ),
        ex.mcp.tasks,
    )
    key = (ex.session_id or "", json.dumps(ex.rid))
    if ex.session_id:
        ex.mcp.inflight[key] = task
    task.add_done_callback(lambda _t: ex.mcp.inflight.pop(key, None))

    async def answer() -> dict[str, Any]:
        try:
            done = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the client cancelled: the call ended cancelled
                done = await on_gate(
                    gateway_service.get_invocation, ex.gateway.ctx.engine, invocation_id=inv.id
                )
            else:
                if ex.modern:  # 2026: closing the request is how a client cancels
                    task.cancel(calls.CLIENT_CANCEL)
                raise
        text = ""
        if done.status in ("denied", "expired"):
            text = await on_gate(_rules_text, ex, name)
        return ex.result(calls.tool_result(done, text))

    if not streaming:
        return _json(await answer())

    async def stream() -> AsyncIterator[str]:
        final = asyncio.create_task(answer())
        try:
            while True:
                getter = asyncio.create_task(events.get())
                finished, _ = await asyncio.wait({final, getter}, return_when="FIRST_COMPLETED")
                if getter in finished:
                    yield _sse(getter.result())
                else:
                    getter.cancel()
                if final in finished:
                    yield _sse(final.result())
                    return
        finally:
            final.cancel()

    return StreamingResponse(stream(), media_type="text/event-stream")


_HANDLERS = {
    "initialize": _initialize,
    "server/discover": _discover,
    "tools/list": _tools_list,
    "tools/call": _tools_call,
}


async def get(server: str, request: Request, mcp: McpRuntime) -> Response:
    found = await mcp.lookup(server)
    if isinstance(found, str):
        return _rpc_error(None, INVALID_REQUEST, found, status=404)
    if not _accepts_sse(request):
        return Response(status_code=405, headers={"Allow": "POST, DELETE"})
    upstream = mcp.pool.get(found)
    queue = upstream.listen()
    connecting = asyncio.create_task(upstream.session())  # notifications need a live session
    mcp.tasks.add(connecting)

    def connected(task: asyncio.Task[Any]) -> None:
        mcp.tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a failure is the upstream's status (logged there), not ours

    connecting.add_done_callback(connected)

    async def notes() -> AsyncIterator[str]:
        try:
            yield ": ping\n\n"
            while True:
                try:
                    note = await asyncio.wait_for(queue.get(), SSE_PING)
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                yield f"event: message\ndata: {json.dumps(note)}\n\n"
        finally:
            upstream.unlisten(queue)

    return StreamingResponse(notes(), media_type="text/event-stream")


async def delete(server: str, request: Request, mcp: McpRuntime) -> Response:
    found = await mcp.lookup(server)
    if isinstance(found, str):
        return _rpc_error(None, INVALID_REQUEST, found, status=404)
    session_id = request.headers.get(SESSION_HEADER)
    if session_id:
        mcp.sessions.pop(session_id, None)
    return Response(status_code=204)
