"""The seed's acceptance steps over real HTTP: Atryum and the simulator as separate servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from atryum.config import Config
from tests.support import ORG, SLUG, LiveServer, wait_until


def test_acceptance(
    engine: sa.Engine,
    sim: Any,
    sim_config: Callable[..., Config],
    live_atryum: Callable[..., LiveServer],
    request: pytest.FixtureRequest,
) -> None:
    admin = httpx2.Client(base_url=f"{sim.url}/admin", timeout=10)
    request.addfinalizer(admin.close)

    def new_record(name: str, charter: str) -> str:
        r = admin.post(
            "/records",
            json={
                "org_cuid": ORG,
                "slug": SLUG,
                "name": name,
                "custom_fields": {"charter": charter},
            },
        )
        assert r.status_code == 201, r.text
        cuid: str = r.json()["cuid"]
        return cuid

    keep = new_record("Claims Triage", "May read claims. May not pay out. Refunds need a human.")
    archived = new_record("Code Review", "May comment on pull requests. May not merge.")
    deleted = new_record("Support Copilot", "May draft replies. May not send without review.")
    bound = new_record("Pipeline Operator", "May restart failed jobs. May not drop tables.")

    with live_atryum(sim_config(sim.url), engine) as server:
        api = httpx2.Client(base_url=server.url, timeout=30)
        request.addfinalizer(api.close)

        def agents(**params: Any) -> dict[str, dict[str, Any]]:
            items = api.get("/api/v1/agents", params=params).json()["items"]
            return {a["vm_cuid"] or a["name"]: a for a in items}

        def sync() -> dict[str, Any]:
            r = api.post("/api/v1/agents/sync", params={"wait": "true"})
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        # 1. configure the org and record type: the settings change triggers the first sync
        r = api.put("/api/v1/settings", json={"org_cuid": ORG, "agent_record_type_slug": SLUG})
        assert r.status_code == 200, r.text
        run_id = r.json()["sync_run_id"]
        wait_until(
            lambda: api.get(f"/api/v1/agents/sync/runs/{run_id}").json()["status"] == "succeeded"
        )
        # 2. records sync as agents with their charters
        synced = agents()
        assert set(synced) == {keep, archived, deleted, bound}
        assert synced[keep]["charter"].startswith("May read claims")
        assert all(a["synced"] and a["org_name"] == "Org One" for a in synced.values())

        # Atryum-owned state on the agents, and a manual agent
        r = api.patch(
            f"/api/v1/agents/{synced[bound]['cuid']}",
            json={
                "agent_ids": ["jwt-pipeline"],
                "tags": ["prod"],
                "claude_managed_agents": [{"claude_agent_id": "agent_01", "account": "acme"}],
            },
        )
        assert r.status_code == 200, r.text
        r = api.patch(
            f"/api/v1/agents/{synced[archived]['cuid']}",
            json={"agent_ids": ["jwt-review"], "tags": ["beta"], "enabled": False},
        )
        assert r.status_code == 200, r.text
        manual = api.post(
            "/api/v1/agents", json={"name": "Local helper", "agent_ids": ["jwt-local"]}
        ).json()

        # 3. archive one record, delete another, archive the bound one; sync
        assert admin.post(f"/records/{archived}/archive").status_code < 300
        assert admin.delete(f"/records/{deleted}").status_code < 300
        assert admin.post(f"/records/{bound}/archive").status_code < 300
        run = sync()
        assert run["status"] == "succeeded", run
        assert (run["retired"], run["kept_dependent"]) == (2, 1)

        # 4. both leave the agent list; the bound one stays, flagged; the manual one is untouched
        active = agents()
        assert archived not in active and deleted not in active
        assert active[bound]["source_missing_since"] is not None
        assert active["Local helper"] == manual
        retired = agents(include_removed="true")
        assert retired[archived]["removal_reason"] == "archived_in_source"

        # 5. unarchive: the agent comes back with the same cuid, runtime ids, tags and bindings
        before = retired[archived]
        assert admin.post(f"/records/{archived}/unarchive").status_code < 300
        assert admin.post(f"/records/{bound}/unarchive").status_code < 300
        run = sync()
        assert run["restored"] == 1
        back = agents()
        assert back[archived]["cuid"] == before["cuid"]
        assert back[archived]["agent_ids"] == ["jwt-review"]
        assert back[archived]["tags"] == ["beta"] and back[archived]["enabled"] is False
        assert back[bound]["source_missing_since"] is None
        assert back[bound]["claude_managed_agents"][0]["claude_agent_id"] == "agent_01"
        assert back[bound]["agent_ids"] == ["jwt-pipeline"]
