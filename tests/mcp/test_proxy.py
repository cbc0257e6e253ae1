"""The MCP proxy over real HTTP with the `mcp` SDK's Client, in front of a real stdio server and
a real streamable-HTTP server: listing, gated calls, human approval while the client waits,
expiry, cancel, an upstream that crashes or hangs, both protocol eras."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client

from tests.gateway.live import REVIEW, Api
from tests.mcp.conftest import SECRET, HttpUpstream, RunLog, stdio_upstream
from tests.support import LiveServer, run_async, wait_until

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
        version, listed, (added, deleted) = run_async(
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
    assert {i["client_name"] for i in page["items"]} == {"mcp"}  # from initialize or _meta


class Raw:
    """A minimal JSON-RPC client over plain HTTP (no Accept header unless asked)."""

    def __init__(self, url: str, session_id: str | None = None) -> None:
        self.url = url
        self.session_id = session_id

    def post(self, message: Any, **headers: str) -> httpx2.Response:
        if self.session_id:
            headers.setdefault("Mcp-Session-Id", self.session_id)
        return httpx2.post(self.url, content=json.dumps(message), headers=headers, timeout=60)

    def call(self, rid: Any, method: str, params: dict[str, Any] | None = None) -> Any:
        r = self.post({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        return r.json()

    def initialize(self) -> dict[str, Any]:
        r = self.post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-03-26",
                    "capabilities": {},
                    "clientInfo": {"name": "raw-test", "version": "1.2"},
                },
            }
        )
        assert r.status_code == 200, r.text
        self.session_id = r.headers["mcp-session-id"]
        ack = self.post({"jsonrpc": "2.0", "id": 99, "method": "notifications/initialized"})
        assert ack.status_code == 202
        body: dict[str, Any] = r.json()
        return body


def in_thread(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run `fn` in a thread; the dict gets its `value` (or `error`) when it returns."""
    import threading

    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    out["thread"] = t
    t.start()
    return out


def test_minimal_clients_are_served_plain_json(
    atryum: Callable[..., LiveServer], run_log: RunLog
) -> None:
    server = atryum([stdio_upstream("Calc Tools", run_log)], policy={"provider": "always_approve"})
    raw = Raw(endpoint(server, "calc-tools"))  # the slug of "Calc Tools"
    with Api(server.url) as api:
        register(api)
    # no initialize, no session, no Accept header: a plain JSON-RPC exchange
    listed = raw.call(1, "tools/list")
    assert "add" in {t["name"] for t in listed["result"]["tools"]}
    raw.session_id = "not-a-session-atryum-knows"
    added = raw.call(2, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}})
    assert added["result"]["structuredContent"] == {"result": 2.0}
    # the stateful handshake, with `notifications/initialized` sent with an id
    init = Raw(endpoint(server, "Calc Tools")).initialize()
    assert init["result"]["protocolVersion"] == "2025-03-26"
    assert init["result"]["serverInfo"]["name"] == "atryum/Calc Tools"


def test_protocol_errors(atryum: Callable[..., LiveServer], run_log: RunLog) -> None:
    server = atryum(
        [stdio_upstream("calc", run_log), stdio_upstream("off", run_log, enabled=False)]
    )
    for name in ("nope", "off"):
        r = Raw(endpoint(server, name)).post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 404
        assert repr(name) in r.json()["error"]["message"]
    raw = Raw(endpoint(server))
    batch = raw.post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    assert batch.status_code == 400 and "batches are not supported" in batch.text
    assert raw.post({"oops": 1}).status_code == 400
    # 2026-07-28: the routing headers must match the body
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    msg = {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": meta}}
    mismatch = raw.post(msg, **{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"})
    assert mismatch.status_code == 400 and "mcp-method" in mismatch.json()["error"]["message"]
    good = raw.post(msg, **{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"})
    assert good.status_code == 200 and good.json()["result"]["resultType"] == "complete"
    # GET is the server-to-client stream (SSE only), DELETE ends a session
    assert httpx2.get(raw.url).status_code == 405
    with httpx2.stream("GET", raw.url, headers={"Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert next(stream.iter_lines()) == ": ping"
    raw.initialize()
    assert (
        httpx2.delete(raw.url, headers={"Mcp-Session-Id": raw.session_id or ""}).status_code == 204
    )


def test_an_upstream_that_cannot_start_is_named_in_the_error(
    atryum: Callable[..., LiveServer],
) -> None:
    broken = {
        "name": "broken",
        "mode": "stdio",
        "command": "/no/such/mcp-server",
        "timeout_seconds": 2,
    }
    server = atryum([broken])
    answer = Raw(endpoint(server, "broken")).call(1, "tools/list")
    assert "MCP server 'broken'" in answer["error"]["message"]


def test_http_upstream_session_is_reinitialised_after_the_upstream_forgets_it(
    atryum: Callable[..., LiveServer], run_log: RunLog, http_upstream: HttpUpstream
) -> None:
    server = atryum(
        [{"name": "calc", "mode": "http", "base_url": http_upstream.url}],
        policy={"provider": "always_approve"},
    )
    with Api(server.url) as api:
        register(api)
    raw = Raw(endpoint(server))
    first = raw.call(1, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}})
    assert first["result"]["structuredContent"] == {"result": 2.0}
    http_upstream.stop()  # a new upstream process knows no session: it answers 404
    http_upstream.start()
    again = raw.call(2, "tools/call", {"name": "add", "arguments": {"a": 2, "b": 2}})
    assert again["result"].get("structuredContent") == {"result": 4.0}, again
    assert run_log.runs("add") == ["add 1.0 1.0", "add 2.0 2.0"]


def test_relayed_methods_are_not_gated(atryum: Callable[..., LiveServer], run_log: RunLog) -> None:
    server = atryum([stdio_upstream("calc", run_log)], policy={"provider": "always_deny"})

    async def go() -> tuple[Any, Any, Any]:
        async with Client(endpoint(server), mode="legacy") as client:
            prompt = await client.get_prompt("greet", {"name": "Ada"})
            resource = await client.read_resource("note://today")
            templates = await client.list_resource_templates()
            return prompt, resource, templates

    prompt, resource, templates = run_async(go())
    assert "Ada" in prompt.messages[0].content.text
    assert resource.contents[0].text == "the note today"
    assert templates.resource_templates[0].uri_template == "note://{title}"
    assert Raw(endpoint(server)).call(1, "ping")["result"] == {}


def test_human_approval_while_the_client_waits_with_progress(
    atryum: Callable[..., LiveServer], run_log: RunLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atryum.mcp import calls

    monkeypatch.setattr(calls, "PROGRESS_EVERY", 0.2)
    server = atryum([stdio_upstream("calc", run_log)])
    beats: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        beats.append(progress)

    async def write() -> types.CallToolResult:
        async with Client(endpoint(server), mode="legacy") as client:
            result = await client.session.call_tool(
                "write_note", {"title": "t", "text": "x"}, progress_callback=on_progress
            )
            return result

    with Api(server.url) as api:
        register(api)
        api.rule("human_approval", tool_patterns=["write_*"], description="writes need a human")
        waiting = in_thread(lambda: asyncio.run(write()))
        inv_id = wait_until(lambda: pending_ids(api, "write_note"))[0]
        wait_until(lambda: len(beats) >= 2)  # the client hears from Atryum while it waits
        assert run_log.runs() == []  # nothing ran before the approval
        api.decide(inv_id, "approve", "looks fine")
        waiting["thread"].join(30)
        result = waiting["value"]
        assert not result.is_error and text_of(result) == "saved t"
        assert run_log.runs("write_note") == ["write_note t"]
        inv = api.ok(api.http.get(f"{REVIEW}/{inv_id}"))
        assert inv["status"] == "succeeded" and inv["client_name"] == "mcp"
        events = api.ok(api.http.get(f"{REVIEW}/{inv_id}/events"))["items"]
        assert [e["status"] for e in events] == [
            "received",
            "pending_approval",
            "approved",
            "executing",
            "succeeded",
        ]


def test_expiry_and_client_cancel(atryum: Callable[..., LiveServer], run_log: RunLog) -> None:
    server = atryum([stdio_upstream("calc", run_log)], approvals={"timeout_seconds": 1})
    with Api(server.url) as api:
        register(api)
        expired = run_async(
            _list_and_call(
                endpoint(server), "legacy", [("write_note", {"title": "a", "text": "b"})]
            )
        )[2][0]
        assert expired.is_error and "expired" in text_of(expired)

        api.ok(api.http.put("/api/v1/policy", json={"approval_timeout_seconds": 600}))
        raw = Raw(endpoint(server))
        raw.initialize()
        params = {"name": "write_note", "arguments": {"title": "c", "text": "d"}}
        waiting = in_thread(lambda: raw.call(7, "tools/call", params))
        inv_id = wait_until(lambda: pending_ids(api, "write_note"))[0]
        cancel = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": 7, "reason": "user pressed Esc"},
        }
        assert Raw(raw.url, raw.session_id).post(cancel).status_code == 202
        waiting["thread"].join(30)
        assert waiting["value"]["result"]["isError"] is True
        inv = api.ok(api.http.get(f"{REVIEW}/{inv_id}"))
        assert inv["status"] == "cancelled"
        assert api.http.post(f"{REVIEW}/{inv_id}/approve", json={}).status_code == 409
    assert run_log.runs() == []  # neither ran


def test_crashed_and_hung_upstreams_block_nothing_else(
    atryum: Callable[..., LiveServer], run_log: RunLog
) -> None:
    server = atryum(
        [stdio_upstream("calc", run_log, timeout_seconds=2), stdio_upstream("other", run_log)],
        policy={"provider": "always_approve"},
    )
    with Api(server.url) as api:
        register(api)

    async def go() -> tuple[Any, ...]:
        async with (
            Client(endpoint(server), mode="legacy") as calc,
            Client(endpoint(server, "other"), mode="legacy") as other,
        ):
            hang = asyncio.create_task(calc.call_tool("hang", {}))
            await asyncio.sleep(0.3)
            # while calc's call hangs: the same server interleaves, the other one answers
            fast = await asyncio.wait_for(calc.call_tool("add", {"a": 1, "b": 2}), 10)
            other_fast = await asyncio.wait_for(other.call_tool("add", {"a": 2, "b": 2}), 10)
            async with httpx2.AsyncClient(base_url=server.url, timeout=5) as http:
                assert (await http.get("/healthz")).status_code == 200  # nor the gateway
                hook = {"source": "claude-code", "tool": "Read", "agent_id": AGENT}
                posted = await http.post("/api/v1/external/invocations", json=hook)
                assert posted.json()["status"] == "approved"
            hung = await hang
            crashed = await calc.call_tool("crash", {})
            again = await calc.call_tool("add", {"a": 5, "b": 5})  # restarted
            return fast, other_fast, hung, crashed, again

    fast, other_fast, hung, crashed, again = run_async(go())
    assert fast.structured_content == {"result": 3.0}
    assert other_fast.structured_content == {"result": 4.0}
    assert hung.is_error and "did not answer within 2 s" in text_of(hung)
    assert crashed.is_error and "closed the connection" in text_of(crashed)
    assert again.structured_content == {"result": 10.0}
    with Api(server.url) as api:
        page = api.ok(api.http.get(REVIEW, params={"source": "calc", "tool": "crash"}))
        assert page["items"][0]["status"] == "failed"
    assert len(run_log.runs("crash")) == 1  # a crashed call is not retried


def test_upstream_secrets_never_reach_clients_answers_or_logs(
    atryum: Callable[..., LiveServer], run_log: RunLog, caplog: pytest.LogCaptureFixture
) -> None:
    server = atryum(
        [stdio_upstream("calc", run_log, auth_token=SECRET, headers={"X-Key": SECRET})],
        policy={"provider": "always_approve"},
    )
    with Api(server.url) as api, caplog.at_level("INFO"):
        register(api)
        leaked = run_async(_list_and_call(endpoint(server), "legacy", [("leak_to_stderr", {})]))
        listed = api.ok(api.http.get("/api/v1/servers"))
        one = api.ok(api.http.get("/api/v1/servers/calc"))
        invocations = api.ok(api.http.get(REVIEW))
        wait_until(lambda: "upstream stderr" in caplog.text)
    assert SECRET not in json.dumps([str(leaked), listed, one, invocations])
    assert SECRET not in caplog.text and "token=********" in caplog.text
    assert one["env"]["UPSTREAM_SECRET"] == "********" and one["auth_token"] == "********"


@pytest.mark.parametrize("upstreams", ["stdio", "http"], indirect=True)
def test_the_get_stream_carries_the_upstreams_list_changed_notifications(
    atryum: Callable[..., LiveServer], upstreams: list[dict[str, Any]]
) -> None:
    server = atryum(upstreams)
    with Api(server.url) as api:
        api.rule("auto_approve", tool_patterns=["change_tools"], description="harmless")
    raw = Raw(endpoint(server))
    raw.initialize()
    seen: list[dict[str, Any]] = []
    pinged = threading.Event()

    def listen() -> None:
        headers = {"Accept": "text/event-stream", "Mcp-Session-Id": raw.session_id or ""}
        with httpx2.stream("GET", raw.url, headers=headers, timeout=30) as stream:
            for line in stream.iter_lines():
                pinged.set()
                if line.startswith("data: "):
                    seen.append(json.loads(line.removeprefix("data: ")))
                    return

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert pinged.wait(20)  # the stream is open and listening
    # the stream waits for the upstream session before a change can be told: call through it
    answer = raw.call(7, "tools/call", {"name": "change_tools", "arguments": {}})
    assert answer["result"]["isError"] is False, answer
    reader.join(20)
    assert seen == [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}]
