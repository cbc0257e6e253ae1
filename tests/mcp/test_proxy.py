"""The MCP proxy over real HTTP with the `mcp` SDK's Client, in front of a real stdio server and
a real streamable-HTTP server: listing, gated calls, human approval while the client waits,
expiry, cancel, an upstream that crashes or hangs, both protocol eras."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client

from tests.gateway.live import REVIEW, Api
from tests.mcp.conftest import SECRET, HttpUpstream, RunLog, stdio_upstream
from tests.support import LiveServer, wait_until

AGENT = "rt-bot"


def endpoint(server: LiveServer, name: str = "calc", agent: str = AGENT) -> str:
    return f"{server.url}/mcp/{name}?agent_id={agent}"


def tools_by_name(result: types.ListToolsResult) -> dict[str, types.Tool]:
    return {t.name: t for t in result.tools}


def action_of(tool: types.Tool) -> str:
    assert tool.meta is not None
    action: str = tool.meta["atryum/effective_action"]
    return action


async def _list_and_call(url: str, mode: str, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    async with Client(url, mode=mode) as client:
        listed = await client.list_tools()
        results = [await client.call_tool(name, args) for name, args in calls]
        return client.protocol_version, listed, results


def register(api: Api, *agent_ids: str) -> None:
    for rid in agent_ids or (AGENT,):
        api.ok(api.http.post("/api/v1/agents", json={"name": rid, "agent_ids": [rid]}), 201)


def pending_ids(api: Api, tool: str) -> list[str]:
    page = api.ok(api.http.get(REVIEW, params={"status": "pending_approval", "tool": tool}))
    return [i["invocation_id"] for i in page["items"]]


def text_of(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.fixture
def upstreams(request: pytest.FixtureRequest, run_log: RunLog) -> list[dict[str, Any]]:
    """The upstream `calc`, over stdio or streamable HTTP."""
    if request.param == "stdio":
        return [stdio_upstream("calc", run_log, timeout_seconds=5)]
    up: HttpUpstream = request.getfixturevalue("http_upstream")
    return [{"name": "calc", "mode": "http", "base_url": up.url, "timeout_seconds": 5}]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("upstreams", ["stdio", "http"], indirect=True)
def test_list_allowed_and_denied_calls(
    atryum: Callable[..., LiveServer],
    upstreams: list[dict[str, Any]],
    run_log: RunLog,
    mode: str,
) -> None:
    server = atryum(upstreams)
    with Api(server.url) as api:
        register(api)
        api.rule("auto_approve", tool_patterns=["add"], description="reads are fine")
        api.rule("auto_deny", tool_patterns=["delete_*"], description="no deletes")
        version, listed, (added, deleted) = asyncio.run(
            _list_and_call(
                endpoint(server), mode, [("add", {"a": 2, "b": 3}), ("delete_note", {"title": "x"})]
            )
        )
    assert version == ("2026-07-28" if mode != "legacy" else "2025-11-25")
    tools = tools_by_name(listed)
    assert action_of(tools["add"]) == "auto_approve"
    assert action_of(tools["delete_note"]) == "auto_deny"
    assert action_of(tools["write_note"]) == "human_approval"  # the default policy
    assert "atryum_rules_get" in tools
    assert not added.is_error and added.structured_content == {"result": 5.0}
    assert deleted.is_error and "no deletes" in text_of(deleted)
    assert run_log.runs("add") == ["add 2.0 3.0"] and run_log.runs("delete_note") == []
    with Api(server.url) as api:
        page = api.ok(api.http.get(REVIEW, params={"source": "calc"}))
    statuses = sorted((i["tool"], i["status"]) for i in page["items"])
    assert statuses == [("add", "succeeded"), ("delete_note", "denied")]
