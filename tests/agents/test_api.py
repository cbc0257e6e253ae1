"""The agents HTTP API: wire field names, partial PATCH, error shapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from tests.support import make_config


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    config = make_config(api_key={"key": "k", "secret": "s"})
    with TestClient(create_app(build_context(config, engine), background=False)) as c:
        yield c


def test_create_get_patch_delete_manual_agent(client: TestClient) -> None:
    r = client.post(
        "/api/v1/agents",
        json={
            "name": "Ops bot",
            "agent_ids": ["jwt-1"],
            "tags": ["ops"],
            "claude_managed_agents": [{"claude_agent_id": "agent_1", "claude_agent_name": "Ops"}],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["enabled"] is True and body["synced"] is False and body["vm_cuid"] is None
    assert body["claude_managed_agents"][0]["account"] == "default"
    cuid = body["cuid"]
    r = client.patch(f"/api/v1/agents/{cuid}", json={"enabled": False})
    assert r.status_code == 200
    patched = r.json()
    assert patched["enabled"] is False and patched["agent_ids"] == ["jwt-1"]
    assert patched["claude_managed_agents"][0]["claude_agent_id"] == "agent_1"
    r = client.patch(f"/api/v1/agents/{cuid}", json={"claude_managed_agents": []})
    assert r.json()["claude_managed_agents"] == []
    assert client.delete(f"/api/v1/agents/{cuid}").status_code == 204
    r = client.get(f"/api/v1/agents/{cuid}")
    assert r.status_code == 404 and "not found" in r.json()["error"]["message"]


def test_agent_json_field_names(client: TestClient) -> None:
    client.post("/api/v1/agents", json={"name": "A"})
    item = client.get("/api/v1/agents").json()["items"][0]
    expected = {
        "cuid",
        "vm_cuid",
        "org_name",
        "name",
        "description",
        "charter",
        "agent_ids",
        "enabled",
        "tags",
        "synced",
        "synced_at",
        "removed_at",
        "removal_reason",
        "source_missing_since",
        "claude_managed_agents",
    }
    assert expected <= set(item)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "bogus": 1}, "bogus"),
        ({"name": "x", "agent_ids": "not-a-list"}, "agent_ids"),
        ({"name": "x", "claude_managed_agents": [{"claude_agent_id": ""}]}, "claude_agent_id"),
        # Found by tests/test_openapi.py: a 500 on PostgreSQL (NUL in text, over-long columns).
        ({"name": "a\x00b"}, "NUL"),
        ({"name": "x", "agent_ids": ["r" * 257]}, "agent_ids.0"),
        (
            {
                "name": "x",
                "claude_managed_agents": [{"claude_agent_id": "a", "account": "a" * 129}],
            },
            "account",
        ),
    ],
)
def test_bad_input_is_a_clear_error(client: TestClient, payload: dict, fragment: str) -> None:
    r = client.post("/api/v1/agents", json=payload)
    assert r.status_code == 422
    assert fragment in r.json()["error"]["message"]
    assert client.get("/api/v1/agents").json()["items"] == []


def test_nul_in_path_or_query_is_a_clear_422(client: TestClient) -> None:
    r = client.get("/api/v1/agents/a%00b")
    assert r.status_code == 422 and "path.agent_id" in r.json()["error"]["message"]
    r = client.get("/api/v1/agents", params={"include_removed": "\x00"})
    assert r.status_code == 422 and "NUL" in r.json()["error"]["message"]


def test_duplicate_runtime_id_is_409(client: TestClient) -> None:
    client.post("/api/v1/agents", json={"name": "A", "agent_ids": ["rt"]})
    r = client.post("/api/v1/agents", json={"name": "B", "agent_ids": ["rt"]})
    assert r.status_code == 409 and "rt" in r.json()["error"]["message"]


def test_wrong_machine_key_is_refused(client: TestClient) -> None:
    r = client.get("/api/v1/agents", headers={"X-API-KEY": "k", "X-API-SECRET": "wrong"})
    assert r.status_code == 401 and "wrong" not in r.json()["error"]["message"]
    ok = client.get("/api/v1/agents", headers={"X-API-KEY": "k", "X-API-SECRET": "s"})
    assert ok.status_code == 200


def test_healthz_and_metrics(client: TestClient) -> None:
    client.post("/api/v1/agents", json={"name": "A"})
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    text = client.get("/metrics").text
    assert 'atryum_agents{state="active_manual"} 1.0' in text


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/agents/sync" in paths and "/api/v1/settings/preview" in paths


def test_agent_list_is_paged_and_searchable(client: TestClient) -> None:
    for i in range(60):
        assert client.post("/api/v1/agents", json={"name": f"Agent {i:02d}"}).status_code == 201
    first = client.get("/api/v1/agents").json()
    assert (first["total"], first["offset"], first["limit"], len(first["items"])) == (60, 0, 50, 50)
    last = client.get("/api/v1/agents?offset=50&limit=50").json()
    assert [a["name"] for a in last["items"]] == [f"Agent {i}" for i in range(50, 60)]
    r = client.get("/api/v1/agents?limit=501")
    assert r.status_code == 422 and "error" in r.json()
    assert client.get("/api/v1/agents?state=nope").status_code == 400

    found = client.get("/api/v1/agents/search?q=agent 5&limit=3").json()
    assert found["total"] == 11 and len(found["items"]) == 3
    assert found["items"][0] == {
        "cuid": found["items"][0]["cuid"],
        "name": "Agent 05",
        "vm_cuid": None,
        "source": "manual",
        "state": "active",
    }
