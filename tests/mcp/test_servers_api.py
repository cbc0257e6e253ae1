"""The servers registry over HTTP: bootstrap from `[[upstreams]]`, CRUD, write-only secrets,
disable, connection test and tool listing with the effective action for an agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from tests.mcp.conftest import SECRET, RunLog, stdio_upstream
from tests.support import make_config

SERVERS = "/api/v1/servers"


@pytest.fixture
def client_for(engine: sa.Engine) -> Iterator[Any]:
    opened: list[TestClient] = []

    def open_(upstreams: list[dict[str, Any]]) -> TestClient:
        app = create_app(build_context(make_config(upstreams=upstreams), engine), background=False)
        c = TestClient(app).__enter__()
        opened.append(c)
        return c

    yield open_
    for c in opened:
        c.__exit__(None, None, None)


def ok(r: Any, code: int = 200) -> Any:
    assert r.status_code == code, r.text
    return r.json() if r.content else None


def test_upstreams_seed_an_empty_table_only(client_for: Any, run_log: RunLog) -> None:
    seeded = client_for([stdio_upstream("calc", run_log), stdio_upstream("Notes & Co", run_log)])
    items = ok(seeded.get(SERVERS))["items"]
    assert [(s["name"], s["endpoint_slug"], s["endpoint"]) for s in items] == [
        ("Notes & Co", "notes-co", "/mcp/notes-co"),
        ("calc", "calc", "/mcp/calc"),
    ]
    ok(seeded.delete(f"{SERVERS}/calc"), 204)
    ok(seeded.delete(f"{SERVERS}/notes-co", params={"mode": "disable"}))
    seeded.__exit__(None, None, None)
    # a restart with the same config: the database is the truth now
    again = client_for([stdio_upstream("calc", run_log), stdio_upstream("Notes & Co", run_log)])
    items = ok(again.get(SERVERS))["items"]
    assert [(s["name"], s["enabled"]) for s in items] == [("Notes & Co", False)]


def test_crud_with_write_only_secrets(client_for: Any) -> None:
    c = client_for([])
    body = {
        "name": "remote",
        "mode": "http",
        "base_url": "http://127.0.0.1:9/mcp",
        "auth_token": SECRET,
        "headers": {"X-Api-Key": SECRET},
        "env": {},
        "timeout_seconds": 7,
    }
    created = ok(c.post(SERVERS, json=body), 201)
    assert created["auth_token"] == "********" and created["headers"] == {"X-Api-Key": "********"}
    assert created["connection_status"] == "unknown"
    # an edit that sends the masks back keeps the secrets; omitting auth_token keeps it too
    edit = {**created_body(created), "timeout_seconds": 9}
    edit.pop("auth_token")
    updated = ok(c.put(f"{SERVERS}/remote", json=edit))
    assert updated["timeout_seconds"] == 9 and updated["has_auth_token"] is True
    assert SECRET not in json.dumps([created, updated, ok(c.get(SERVERS))])
    assert ok(c.post(SERVERS, json=body), 409)["error"]["message"].startswith("a server named")
    clash = {**body, "name": "Remote"}  # same slug
    assert "already used" in ok(c.post(SERVERS, json=clash), 409)["error"]["message"]
    assert ok(c.post(SERVERS, json={"name": "x", "mode": "stdio"}), 400)["error"]["message"]
    assert ok(c.post(SERVERS, json={"name": "y", "mode": "http", "base_url": "ftp://x"}), 400)
    assert ok(c.get(f"{SERVERS}/nope"), 404)["error"]["message"] == "MCP server 'nope' not found"
    cleared = ok(c.put(f"{SERVERS}/remote", json={**edit, "auth_token": ""}))
    assert cleared["auth_token"] is None and cleared["has_auth_token"] is False


def created_body(out: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "mode", "base_url", "command", "args", "env", "auth_token", "headers")
    return {k: out[k] for k in keys} | {"timeout_seconds": out["timeout_seconds"]}


def test_test_and_tools_show_status_and_the_agents_actions(
    client_for: Any, run_log: RunLog
) -> None:
    c = client_for([stdio_upstream("calc", run_log)])
    ok(c.post("/api/v1/agents", json={"name": "Bot", "agent_ids": ["rt-bot"]}), 201)
    ok(c.post("/api/v1/rules", json={"action": "auto_approve", "tool_patterns": ["add"]}), 201)
    tested = ok(c.post(f"{SERVERS}/calc/test"))
    assert tested["ok"] is True and tested["tools"] >= 5
    assert ok(c.get(f"{SERVERS}/calc"))["connection_status"] == "connected"
    tools = ok(c.get(f"{SERVERS}/calc/tools", params={"agent_id": "rt-bot"}))["items"]
    actions = {t["name"]: t["effective_action"] for t in tools}
    assert actions["add"] == "auto_approve" and actions["write_note"] == "human_approval"
    off = {"name": "Paused", "agent_ids": ["rt-off"], "enabled": False}
    ok(c.post("/api/v1/agents", json=off), 201)
    paused = ok(c.get(f"{SERVERS}/calc/tools", params={"agent_id": "rt-off"}))["items"]
    assert {t["effective_action"] for t in paused} == {"auto_deny"}  # a disabled agent

    broken = {"name": "broken", "mode": "stdio", "command": "/no/such/binary", "env": {"K": SECRET}}
    ok(c.post(SERVERS, json=broken), 201)
    failed = ok(c.post(f"{SERVERS}/broken/test"))
    assert failed["ok"] is False and "broken" in failed["error"] and SECRET not in failed["error"]
    assert ok(c.get(f"{SERVERS}/broken"))["connection_status"] == "error"
