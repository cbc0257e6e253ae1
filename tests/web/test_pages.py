"""The pages' server-side reads (through the service layer) on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.agents import service as agents
from atryum.agents.service import BindingInput
from atryum.app import build_context, create_app
from atryum.config import Config, SyncConfig
from atryum.context import AppContext
from atryum.db import tables
from atryum.sync.settings import update_settings
from tests.support import ORG, SLUG


@pytest.fixture
def app(
    engine: sa.Engine, sim: Any, sim_config: Callable[..., Config]
) -> Iterator[tuple[TestClient, AppContext]]:
    ctx = build_context(sim_config(sim.url), engine)
    with TestClient(create_app(ctx, background=False)) as client:
        yield client, ctx


def _names(html: str) -> list[str]:
    return sorted(re.findall(r'<tr data-agent="([^"]+)"', html))


def test_pages_show_the_registry_and_the_runs(
    app: tuple[TestClient, AppContext], sim_state: Any, engine: sa.Engine
) -> None:
    client, ctx = app
    cuids = {
        name: sim_state.create_record(ORG, SLUG, name=name, custom_fields={"charter": "May."})[
            "cuid"
        ]
        for name in ("Archived", "Bound", "Stays")
    }
    update_settings(
        engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=SyncConfig()
    )
    assert ctx.coordinator.run_blocking(trigger="manual")["created"] == 3
    synced = {a.name: a for a in agents.list_agents(engine)}
    agents.update_agent(
        engine,
        agent_id=synced["Bound"].id,
        changes={"bindings": [BindingInput("acme", "agent_01", "")]},
    )
    agents.create_manual_agent(engine, name="Manual", tags=["ops"])
    sim_state.archive_record(cuids["Archived"])
    sim_state.archive_record(cuids["Bound"])
    run = ctx.coordinator.run_blocking(trigger="manual")
    assert (run["retired"], run["kept_dependent"]) == (1, 1)

    redirect = client.get("/", follow_redirects=False)
    assert (redirect.status_code, redirect.headers["location"]) == (307, "/ui/")
    expected = {
        "": ["Bound", "Manual", "Stays"],
        "?state=kept": ["Bound"],
        "?state=retired": ["Archived"],
        "?state=all": ["Archived", "Bound", "Manual", "Stays"],
        "?state=unknown": ["Bound", "Manual", "Stays"],
        "?source=manual": ["Manual"],
        "?source=validmind&state=all": ["Archived", "Bound", "Stays"],
        "?q=OPS": ["Manual"],
        "?q=stay": ["Stays"],
    }
    for query, names in expected.items():
        page = client.get(f"/ui/{query}")
        assert page.status_code == 200
        assert _names(page.text) == names, query
    assert "Purge" in client.get("/ui/?state=retired").text

    bound = client.get(f"/ui/agents/{synced['Bound'].id}").text
    assert "Managed by ValidMind" in bound
    assert "archived in ValidMind — kept: has bindings" in bound
    assert client.get("/ui/agents/no-such-agent").status_code == 404

    history = client.get("/ui/sync/runs").text
    assert history.count("<tr data-run-id=") == 2
    detail = client.get(f"/ui/sync/runs/{run['id']}").text
    assert "Retired (1)" in detail and "Kept (something depends on them) (1)" in detail
    assert "1 record fetched from ValidMind: 1 unchanged, 1 retired, 1 kept." in detail
    assert client.get(f"/ui/sync/runs/{run['id']}/status").json() == {
        "status": "succeeded",
        "known": True,
    }
    assert client.get("/ui/sync/runs/no-such-run").status_code == 404
    assert client.get("/ui/sync/runs/no-such-run?started=1").status_code == 200
    assert client.get("/ui/sync/runs/no-such-run/status").json() == {
        "status": "starting",
        "known": False,
        "give_up_after_ms": 30_000,
    }

    sync = client.get("/ui/sync").text
    assert "Sync from ValidMind" in sync and run["id"] in sync
    assert '"agent_record_type_slug": "ai-agent"' in client.get("/ui/settings").text


def test_connection_status_reports_validmind_errors(
    app: tuple[TestClient, AppContext], sim_state: Any
) -> None:
    client, _ = app
    assert client.get("/ui/connection").json()["state"] == "ok"
    sim_state.set_faults(status=500, endpoints=["connection"])
    status = client.get("/ui/connection").json()
    assert status["state"] == "error" and "HTTP 500" in status["message"]


def test_gateway_pages_read_invocations_and_rules(
    app: tuple[TestClient, AppContext], engine: sa.Engine
) -> None:
    client, _ = app
    agent = agents.create_manual_agent(engine, name="Claims bot", agent_ids=["claims"])
    rule = client.post(
        "/api/v1/rules",
        json={"action": "auto_approve", "tool_patterns": ["Read"], "description": "Reads"},
    ).json()
    hook = "/api/v1/external/invocations"
    read = client.post(hook, json={"source": "cc", "tool": "Read", "agent_id": "claims"}).json()
    bash = client.post(hook, json={"source": "cc", "tool": "Bash", "agent_id": "claims"}).json()
    assert (read["status"], bash["status"]) == ("approved", "pending_approval")

    listing = client.get("/ui/invocations").text
    assert listing.count("<tr data-invocation-id=") == 2
    assert "Invocations<span" in listing and " (1)</span>" in listing  # the pending badge
    assert "#1 “Reads”" in listing and "Claims bot" in listing
    pending = client.get("/ui/invocations/rows?status=pending_approval").text
    assert re.findall(r'<tr data-invocation-id="([^"]+)"', pending) == [bash["invocation_id"]]
    assert "<header" not in pending
    assert client.get("/ui/invocations?status=bogus").status_code == 200

    detail = client.get(f"/ui/invocations/{bash['invocation_id']}").text
    assert 'id="decision-form"' in detail and "Approve" in detail
    assert 'id="decision-form"' not in client.get(f"/ui/invocations/{read['invocation_id']}").text
    assert client.get("/ui/invocations/no-such-call").status_code == 404

    rules_page = client.get("/ui/rules").text
    assert f'data-rule-id="{rule["id"]}"' in rules_page and "manual_approval" in rules_page
    assert "Claims bot" in client.get("/ui/rules/new").text
    assert client.get(f"/ui/rules/{rule['id']}").status_code == 200
    assert client.get("/ui/rules/no-such-rule").status_code == 404
    assert agent.id in client.get("/ui/rules/new").text


def test_the_pending_badge_leaves_out_overdue_calls_without_expiring_them(
    engine: sa.Engine, sim: Any, sim_config: Callable[..., Config]
) -> None:
    # no lifespan, so no expiry sweeper: only a page render could expire the overdue call
    client = TestClient(create_app(build_context(sim_config(sim.url), engine), background=False))
    agents.create_manual_agent(engine, name="Claims bot", agent_ids=["claims"])
    hook = "/api/v1/external/invocations"
    calls = [
        client.post(hook, json={"source": "cc", "tool": tool, "agent_id": "claims"}).json()
        for tool in ("Bash", "Write")
    ]
    overdue = calls[0]["invocation_id"]
    with engine.begin() as conn:
        conn.execute(
            sa.update(tables.approvals)
            .where(tables.approvals.c.invocation_id == overdue)
            .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )

    rules_page = client.get("/ui/rules").text
    assert " (1)</span>" in rules_page  # the overdue call is not counted as waiting
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(tables.invocations.c.status).where(tables.invocations.c.id == overdue)
        ).scalar_one()
    assert status == "pending_approval"  # rendering a page left the expiry to the sweeper
