"""The MCP proxy with `[[auth]]` on, against the real oidc-provider: `/mcp/{server}` and
`POST /api/v1/invocations` challenge a caller without a token, and the token's agent (not the
`?agent_id=` hint) is who the rules see and who the invocation belongs to."""

from __future__ import annotations

from collections.abc import Callable

import httpx2

from tests.gateway.live import REVIEW, Api
from tests.idp.fixtures import Idp
from tests.mcp.conftest import RunLog, stdio_upstream
from tests.support import LiveServer

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}


def test_the_token_decides_who_calls(
    atryum: Callable[..., LiveServer], run_log: RunLog, idp: Idp
) -> None:
    block = {**idp.auth_block(), "admin_enabled": True}  # operator-bot's token is an admin's
    server = atryum([stdio_upstream("calc", run_log)], auth=[block])
    url = f"{server.url}/mcp/calc?agent_id=someone-else"
    body = {**CALL, "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
    bare = httpx2.post(url, json=body)
    assert bare.status_code == 401
    assert "/.well-known/oauth-protected-resource/mcp/calc" in bare.headers["www-authenticate"]
    rest = httpx2.post(f"{server.url}/api/v1/invocations", json={"server": "calc", "tool": "add"})
    assert rest.status_code == 401
    assert run_log.runs() == []

    with Api(server.url) as api:
        api.http.headers["Authorization"] = f"Bearer {idp.mint('operator-bot')}"
        bot = {"name": "Bot", "agent_ids": ["agent-rs"]}
        bot_id = api.ok(api.http.post("/api/v1/agents", json=bot), 201)["cuid"]
        api.rule("auto_approve", tool_patterns=["add"], agent_cuids=[bot_id])
        token = {"Authorization": f"Bearer {idp.mint('agent-rs')}"}
        listed = httpx2.post(
            url, json={"jsonrpc": "2.0", "id": 0, "method": "tools/list"}, headers=token
        )
        actions = {
            t["name"]: t["annotations"]["atryum"]["effective_action"]
            for t in listed.json()["result"]["tools"]
        }
        assert actions["add"] == "auto_approve"  # the rule of the token's agent
        answer = httpx2.post(url, json=body, headers=token).json()
        assert answer["result"]["structuredContent"] == {"result": 3.0}
        (inv,) = api.ok(api.http.get(REVIEW))["items"]
    assert inv["agent_id"] == "agent-rs" and inv["agent_record_id"] == bot_id
    assert run_log.runs("add") == ["add 1.0 2.0"]
