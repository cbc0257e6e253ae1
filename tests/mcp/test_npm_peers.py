"""Atryum between real npm peers: npm's reference `@modelcontextprotocol/server-everything` as
the upstream, and `mcp-remote` and the `@modelcontextprotocol/inspector` CLI as clients.
(Installed by `npm install --prefix tests/npm`, as .ci/run does.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.gateway.live import REVIEW, Api
from tests.mcp.conftest import REPO, RunLog, stdio_upstream
from tests.mcp.test_proxy import endpoint, register, text_of
from tests.support import LiveServer, run_async

BIN = REPO / "tests" / "npm" / "node_modules" / ".bin"
NODE = shutil.which("node") or "node"


@pytest.fixture(autouse=True)
def _installed() -> None:
    if not (BIN / "mcp-remote").exists():
        pytest.fail("npm peers missing: run `npm install --prefix tests/npm` (as .ci/run does)")


def test_server_everything_behind_atryum(atryum: Callable[..., LiveServer]) -> None:
    everything = {
        "name": "everything",
        "mode": "stdio",
        "command": NODE,
        "args": [str(BIN / "mcp-server-everything"), "stdio"],
    }
    server = atryum([everything])
    with Api(server.url) as api:
        register(api)
        api.rule("auto_approve", tool_patterns=["echo"])
        api.rule("auto_deny", tool_patterns=["*"], description="nothing else")

        async def go() -> Any:
            async with Client(endpoint(server, "everything"), mode="legacy") as client:
                listed = await client.list_tools()
                echoed = await client.call_tool("echo", {"message": "hi there"})
                other = next(
                    t.name for t in listed.tools if t.name not in ("echo", "atryum_rules_get")
                )
                denied = await client.call_tool(other, {})
                return listed, echoed, denied

        listed, echoed, denied = run_async(go())
    assert len(listed.tools) > 3
    assert not echoed.is_error and "hi there" in text_of(echoed)
    assert denied.is_error and "nothing else" in text_of(denied)


def _mcp_remote(url: str, home: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=NODE,
        args=[str(BIN / "mcp-remote"), url, "--transport", "http-only", "--allow-http"],
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "")},
    )


def test_mcp_remote_as_the_client(
    atryum: Callable[..., LiveServer], run_log: RunLog, tmp_path: Path
) -> None:
    server = atryum([stdio_upstream("calc", run_log)])
    with Api(server.url) as api:
        register(api)
        api.rule("auto_approve", tool_patterns=["add"])
        api.rule("auto_deny", tool_patterns=["delete_*"], description="no deletes")

        async def go() -> Any:
            async with Client(_mcp_remote(endpoint(server), tmp_path), mode="legacy") as client:
                listed = await client.list_tools()
                added = await client.call_tool("add", {"a": 20, "b": 22})
                deleted = await client.call_tool("delete_note", {"title": "x"})
                return listed, added, deleted

        listed, added, deleted = run_async(go())
        page = api.ok(api.http.get(REVIEW, params={"source": "calc"}))
    assert {"add", "write_note", "atryum_rules_get"} <= {t.name for t in listed.tools}
    assert added.structured_content == {"result": 42.0}
    assert deleted.is_error and "no deletes" in text_of(deleted)
    assert run_log.runs("delete_note") == []
    assert {i["client_name"] for i in page["items"]} == {"mcp (via mcp-remote 0.15.1)"}


def _inspector(url: str, home: Path, *args: str) -> Any:
    done = subprocess.run(
        [NODE, str(BIN / "mcp-inspector"), "--cli", url, "--transport", "http", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "")},
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def test_inspector_cli_as_the_client(
    atryum: Callable[..., LiveServer], run_log: RunLog, tmp_path: Path
) -> None:
    server = atryum([stdio_upstream("calc", run_log)])
    with Api(server.url) as api:
        register(api)
        api.rule("auto_approve", tool_patterns=["add"])
    url = endpoint(server)
    listed = _inspector(url, tmp_path, "--method", "tools/list")
    actions = {t["name"]: t["_meta"]["atryum/effective_action"] for t in listed["tools"]}
    assert actions["add"] == "auto_approve" and actions["write_note"] == "human_approval"
    added = _inspector(
        url, tmp_path, "--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=1", "b=2"
    )
    assert added["structuredContent"] == {"result": 3.0}
