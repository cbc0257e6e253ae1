"""Probes and the Go original's reporting routes (go-compat.md §4), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from atryum.db import migrate
from atryum.db.tables import agents
from atryum.db.types import utcnow
from tests.gateway.helpers import agent, rule
from tests.support import engine_at, make_config

KEYS = {"X-API-Key": "rep-key", "X-API-Secret": "rep-secret"}


def app_client(engine: sa.Engine, **config: Any) -> TestClient:
    return TestClient(create_app(build_context(make_config(**config), engine), background=False))


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    with app_client(engine, api_key={"key": "rep-key", "secret": "rep-secret"}) as c:
        yield c


def test_liveness_survives_a_database_outage_readiness_does_not(tmp_path: Any) -> None:
    # A database that cannot be opened stands in for a blip; no lifespan (it would migrate).
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    client = app_client(engine)
    live = client.get("/healthz")
    assert live.status_code == 200 and live.json() == {"status": "ok", "database": "unreachable"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["database"] == "unreachable"
    assert "sqlite" not in ready.text.lower() and "missing-dir" not in ready.text


def test_readiness_waits_for_the_migrations(db_url: str) -> None:
    engine = engine_at(db_url, "0001")
    client = app_client(engine)  # not entered: the lifespan would migrate
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["database"] == "migrations_pending"
    migrate.upgrade(engine)
    assert client.get("/readyz").json() == {"status": "ready", "database": "ok"}
    engine.dispose()


def test_a_stray_api_key_header_is_ignored(engine: sa.Engine) -> None:
    with app_client(engine) as unconfigured:
        stray = {"X-API-Key": "someone-elses", "X-API-Secret": "x"}
        assert unconfigured.get("/api/v1/rules", headers=stray).status_code == 200
        r = unconfigured.post(
            "/api/v1/external/invocations",
            json={"source": "s", "tool": "t"},
            headers={"X-API-Key": "k"},
        )
        assert r.status_code == 201
    # once [api_key] is configured the headers mean something: a wrong pair is refused
    with app_client(engine, api_key={"key": "rep-key", "secret": "rep-secret"}) as configured:
        assert configured.get("/api/v1/rules", headers={"X-API-Key": "x"}).status_code == 401


def test_reporting_needs_the_configured_pair(engine: sa.Engine, client: TestClient) -> None:
    with app_client(engine) as unconfigured:
        r = unconfigured.get("/agent_ids", headers=KEYS)
        assert r.status_code == 503 and "[api_key]" in r.json()["error"]["message"]
    for headers in ({}, {"X-API-Key": "rep-key"}, {**KEYS, "X-API-Secret": "wrong"}):
        r = client.get("/agent_ids", headers=headers)
        assert r.status_code == 401, headers
        assert "rep-" not in r.text and "wrong" not in r.text
    assert client.get("/agent_ids", headers=KEYS).json() == {"items": []}


def _submit(client: TestClient, agent_id: str | None, tool: str = "Bash") -> dict[str, Any]:
    body = {"source": "claude-code", "tool": tool, "agent_id": agent_id}
    r = client.post("/api/v1/external/invocations", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def test_reporting_lists_agents_and_their_invocations(
    engine: sa.Engine, client: TestClient
) -> None:
    rule(engine, "auto_approve")
    synced = agent(engine, "Synced", "rt-synced")
    with engine.begin() as conn:  # as a ValidMind sync would have recorded it
        conn.execute(
            agents.update()
            .where(agents.c.id == synced.id)
            .values(source="validmind", vm_cuid="vm-123", updated_at=utcnow())
        )
    ids = [_submit(client, "rt-a", f"T{i}")["invocation_id"] for i in range(3)]
    _submit(client, "rt-synced")
    _submit(client, None)
    assert client.get("/agent_ids", headers=KEYS).json() == {"items": ["rt-a", "rt-synced"]}
    page = client.get("/invocations/rt-a", params={"limit": 2}, headers=KEYS).json()
    assert (page["total"], page["offset"], page["limit"]) == (3, 0, 2)
    assert [i["invocation_id"] for i in page["items"]] == ids[::-1][:2]
    rest = client.get("/invocations/rt-a", params={"offset": 2}, headers=KEYS).json()
    assert [i["invocation_id"] for i in rest["items"]] == ids[:1]
    future = client.get(
        "/invocations/rt-a", params={"start_date": "2999-01-01"}, headers=KEYS
    ).json()
    assert future["total"] == 0
    past = client.get(
        "/invocations/rt-a",
        params={"start_date": "2000-01-01", "end_date": "2999-01-01T00:00:00Z"},
        headers=KEYS,
    ).json()
    assert past["total"] == 3
    assert (
        client.get("/invocations/rt-a", params={"end_date": "2000-01-01"}, headers=KEYS).json()[
            "total"
        ]
        == 0
    )
    model = client.get("/models/vm-123/invocations", headers=KEYS).json()
    assert model["total"] == 1 and model["items"][0]["agent_record_id"] == synced.id
    missing = client.get("/models/vm-none/invocations", headers=KEYS)
    assert missing.status_code == 404
    too_many = client.get("/invocations/rt-a", params={"limit": 501}, headers=KEYS)
    assert too_many.status_code == 422 and "limit" in too_many.json()["error"]["message"]
    bad_date = client.get("/invocations/rt-a", params={"start_date": "soon"}, headers=KEYS)
    assert bad_date.status_code == 422
