"""`POST /api/v1/invocations`: Atryum gates a call of an upstream tool and runs it itself.
An invocation runs at most once, however many requests wait for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.gateway.live import HOOK, Api
from tests.mcp.conftest import RunLog, stdio_upstream
from tests.mcp.test_proxy import AGENT, in_thread, pending_ids, register
from tests.support import LiveServer, wait_until

INVOKE = "/api/v1/invocations"


def invoke(api: Api, tool: str, code: int = 200, params: Any = None, **body: Any) -> Any:
    payload = {"server": "calc", "tool": tool, "agent_id": AGENT, **body}
    return api.ok(api.http.post(INVOKE, json=payload, params=params), code)


def test_rest_invocations(atryum: Callable[..., LiveServer], run_log: RunLog) -> None:
    server = atryum(
        [stdio_upstream("calc", run_log), stdio_upstream("off", run_log, enabled=False)]
    )
    with Api(server.url) as api:
        register(api)
        api.rule("auto_approve", tool_patterns=["add"])
        api.rule("auto_deny", tool_patterns=["delete_note"], description="no deletes")
        added = invoke(api, "add", input={"a": 1, "b": 2})
        assert added["status"] == "succeeded" and added["server_name"] == "calc"
        assert added["result"]["structuredContent"] == {"result": 3.0}
        denied = invoke(api, "delete_note", input={"title": "x"})
        assert denied["status"] == "denied" and "no deletes" in denied["approval"]["reason"]
        for name in ("nope", "off"):
            assert repr(name) in invoke(api, "add", 400, server=name)["error"]["message"]
        assert "missing field(s): tool" in invoke(api, "", 400)["error"]["message"]
    assert run_log.runs() == ["add 1.0 2.0"]


def test_waiters_of_one_invocation_run_it_once(
    atryum: Callable[..., LiveServer], run_log: RunLog
) -> None:
    server = atryum([stdio_upstream("calc", run_log)])
    note = {"title": "once", "text": "x"}
    with Api(server.url) as api:
        register(api)
        # answer at once, and two blocking waiters on the same idempotency key
        queued = invoke(api, "write_note", params={"wait": "false"}, input=note)
        assert queued["status"] == "pending_approval"
        waiters = [
            in_thread(
                lambda: api.ok(
                    api.http.post(
                        INVOKE,
                        json={
                            "server": "calc",
                            "tool": "write_note",
                            "input": note,
                            "agent_id": AGENT,
                        },
                        headers={"Idempotency-Key": "k-1"},
                    )
                )
            )
            for _ in range(2)
        ]
        keyed = wait_until(
            lambda: [i for i in pending_ids(api, "write_note") if i != queued["invocation_id"]]
        )
        assert len(keyed) == 1  # both waiters share one invocation
        for inv_id in (queued["invocation_id"], keyed[0]):
            api.decide(inv_id, "approve")
        for w in waiters:
            w["thread"].join(30)
            assert w["value"]["status"] == "succeeded", w
        done = wait_until(
            lambda: api.poll(queued["invocation_id"])["status"] == "succeeded" or None
        )
        assert done
        assert api.ok(api.http.get(f"{HOOK}/{keyed[0]}"))["status"] == "succeeded"
    assert run_log.runs("write_note") == ["write_note once", "write_note once"]  # one each
