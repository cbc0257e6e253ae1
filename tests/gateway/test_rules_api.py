"""Rules API: ordering, insert_before, move, validation, stale agents; policy; advisory lookup."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.gateway.helpers import retire

RULES = "/api/v1/rules"


def add(client: TestClient, description: str, **body: Any) -> dict[str, Any]:
    body.setdefault("action", "auto_approve")
    r = client.post(RULES, json={"description": description, **body})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def order(client: TestClient) -> list[str]:
    items = client.get(RULES).json()["items"]
    assert [i["order"] for i in items] == list(range(len(items)))
    return [i["description"] for i in items]


def test_create_read_replace_delete(client: TestClient) -> None:
    r = add(client, "gh", tool_patterns=["mcp__github__*"], server_patterns=["claude-code"])
    assert r["enabled"] is True and r["stale_agents"] == [] and r["matches_nothing"] is False
    got = client.get(f"{RULES}/{r['id']}").json()
    assert got == r
    put = client.put(
        f"{RULES}/{r['id']}",
        json={
            "action": "auto_deny",
            "tool_patterns": ["Bash"],
            "description": "no bash",
            "enabled": False,
        },
    )
    assert put.status_code == 200
    assert (put.json()["action"], put.json()["enabled"], put.json()["order"]) == (
        "auto_deny",
        False,
        0,
    )
    assert put.json()["server_patterns"] == []
    assert client.delete(f"{RULES}/{r['id']}").status_code == 204
    assert client.get(f"{RULES}/{r['id']}").status_code == 404
    assert client.delete(f"{RULES}/{r['id']}").status_code == 404


def test_insert_before_and_move(client: TestClient) -> None:
    a = add(client, "a")
    add(client, "b")
    add(client, "top", insert_before="")
    add(client, "before-a", insert_before=a["id"])
    assert order(client) == ["top", "before-a", "a", "b"]
    r = client.put(f"{RULES}/{a['id']}/move", json={"direction": "up"})
    assert r.status_code == 200 and r.json()["order"] == 1
    assert order(client) == ["top", "a", "before-a", "b"]
    client.put(f"{RULES}/{a['id']}/move", json={"direction": "down"})
    client.put(f"{RULES}/{a['id']}/move", json={"direction": "down"})
    client.put(f"{RULES}/{a['id']}/move", json={"direction": "down"})  # already last: no-op
    assert order(client) == ["top", "before-a", "b", "a"]
    top = client.get(RULES).json()["items"][0]
    client.put(f"{RULES}/{top['id']}/move", json={"direction": "up"})
    assert order(client) == ["top", "before-a", "b", "a"]
    client.delete(f"{RULES}/{top['id']}")
    assert order(client) == ["before-a", "b", "a"]
    bad = client.put(f"{RULES}/{a['id']}/move", json={"direction": "sideways"})
    assert bad.status_code == 422
    missing = client.put(f"{RULES}/nope/move", json={"direction": "up"})
    assert missing.status_code == 404


def test_order_decides(client: TestClient) -> None:
    add(client, "allow bash", tool_patterns=["Bash"])
    deny = add(client, "deny bash", action="auto_deny", tool_patterns=["Bash"], insert_before="")
    hook = {"source": "claude-code", "tool": "Bash", "input": {}}
    assert client.post("/api/v1/external/invocations", json=hook).json()["status"] == "denied"
    client.put(f"{RULES}/{deny['id']}/move", json={"direction": "down"})
    assert client.post("/api/v1/external/invocations", json=hook).json()["status"] == "approved"


def test_validation_errors(client: TestClient) -> None:
    cases = [
        ({"action": "maybe"}, 422, "action"),
        ({"action": "auto_approve", "tool_patterns": [" "]}, 400, "tool_patterns"),
        ({"action": "auto_approve", "agent_cuids": ["ghost"]}, 400, "ghost"),
        ({"action": "auto_approve", "insert_before": "ghost"}, 400, "insert_before"),
        ({"action": "auto_approve", "bogus": 1}, 422, "bogus"),
        ({"action": "auto_approve", "tool_patterns": ["*a" * 129]}, 400, "at most 256"),
        # Found by tests/test_openapi.py: a 500 on PostgreSQL (NUL looked up in a text column).
        ({"action": "auto_approve", "agent_cuids": ["\x00"]}, 422, "NUL"),
    ]
    for payload, code, fragment in cases:
        r = client.post(RULES, json=payload)
        assert r.status_code == code, (payload, r.text)
        assert fragment in r.json()["error"]["message"]
    assert client.get(RULES).json()["items"] == []


def test_stale_agents_are_flagged_and_never_widen(client: TestClient, engine: sa.Engine) -> None:
    a = client.post("/api/v1/agents", json={"name": "A", "agent_ids": ["rt-a"]}).json()
    b = client.post("/api/v1/agents", json={"name": "B", "agent_ids": ["rt-b"]}).json()
    client.post("/api/v1/agents", json={"name": "C", "agent_ids": ["rt-c"]})
    rule = add(client, "a and b may", agent_cuids=[a["cuid"], b["cuid"]])
    client.put("/api/v1/policy", json={"provider": "always_deny"})

    def status(rt: str) -> str:
        body = {"source": "claude-code", "tool": "Bash", "input": {}, "agent_id": rt}
        result: str = client.post("/api/v1/external/invocations", json=body).json()["status"]
        return result

    assert [status("rt-a"), status("rt-b"), status("rt-c")] == ["approved", "approved", "denied"]
    retire(engine, a["cuid"])
    got = client.get(f"{RULES}/{rule['id']}").json()
    assert got["stale_agents"] == [a["cuid"]] and got["matches_nothing"] is False
    assert {x["cuid"]: x["state"] for x in got["agents"]} == {
        a["cuid"]: "retired",
        b["cuid"]: "active",
    }
    assert [status("rt-a"), status("rt-b"), status("rt-c")] == ["denied", "approved", "denied"]
    retire(engine, b["cuid"])
    got = client.get(f"{RULES}/{rule['id']}").json()
    assert got["stale_agents"] == [a["cuid"], b["cuid"]] and got["matches_nothing"] is True
    assert [status("rt-a"), status("rt-b"), status("rt-c")] == ["denied", "denied", "denied"]


def test_policy_get_and_put(client: TestClient) -> None:
    p = client.get("/api/v1/policy").json()
    assert (p["provider"], p["approval_timeout_seconds"]) == ("manual_approval", 3600)
    r = client.put("/api/v1/policy", json={"provider": "always_deny"})
    assert r.status_code == 200 and r.json()["provider"] == "always_deny"
    assert r.json()["approval_timeout_seconds"] == 3600 and r.json()["updated_at"]
    assert client.put("/api/v1/policy", json={"provider": "yolo"}).status_code == 422
    assert client.put("/api/v1/policy", json={"approval_timeout_seconds": 0}).status_code == 422
    # Found by tests/test_openapi.py: an integer overflow (500) on PostgreSQL.
    big = client.put("/api/v1/policy", json={"approval_timeout_seconds": 2**31})
    assert big.status_code == 422 and "approval_timeout_seconds" in big.json()["error"]["message"]
    assert client.get("/api/v1/policy").json()["provider"] == "always_deny"


def test_agent_rules_is_advisory_and_fails_closed(client: TestClient, engine: sa.Engine) -> None:
    bot = client.post("/api/v1/agents", json={"name": "Bot", "agent_ids": ["rt-bot"]}).json()
    scoped = add(client, "bot may read", tool_patterns=["Read"], agent_cuids=[bot["cuid"]])
    add(client, "everyone may read", tool_patterns=["Read"])
    add(client, "no bash", action="auto_deny", tool_patterns=["Bash"])
    q = {"source": "claude-code", "tool": "Read", "agent_id": "rt-bot"}
    r = client.get("/api/v1/agent/rules", params=q).json()
    assert r["agent"] == {"cuid": bot["cuid"], "name": "Bot"} and r["denied"] is None
    assert [x["description"] for x in r["rules"]] == ["bot may read", "everyone may read"]
    assert r["decision"] == {
        "outcome": "approve",
        "reason": "approved by rule 'bot may read'",
        "rule_id": scoped["id"],
    }
    retire(engine, bot["cuid"])
    r = client.get("/api/v1/agent/rules", params=q).json()
    assert r["rules"] == [] and r["decision"]["outcome"] == "deny"
    assert r["denied"] == "agent Bot was retired: its ValidMind record is archived"
    assert client.get("/api/v1/review/invocations").json()["total"] == 0
