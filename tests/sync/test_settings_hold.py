"""A scope change goes through the sync's safety valves (issue 14 row 1): the new scope is
checked against ValidMind before anything is saved, and a change that would retire more than the
thresholds allow is held until it is allowed — a typo in `org_cuid` never wipes the registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from atryum.config import Config
from tests.support import ORG, SLUG, wait_until

NAMES = [f"Agent {i}" for i in range(8)]


@pytest.fixture
def client(
    engine: sa.Engine, sim: Any, sim_state: Any, sim_config: Callable[..., Config]
) -> Iterator[TestClient]:
    sim_state.add_record_type("org-2", SLUG, "AI Agent")
    sim_state.add_custom_field("org-2", SLUG, "charter", "Charter", "long-text")
    for name in NAMES:
        sim_state.create_record(ORG, SLUG, name=name, custom_fields={"charter": "c"})
    with TestClient(create_app(build_context(sim_config(sim.url), engine), background=False)) as c:
        scope = {"org_cuid": ORG, "agent_record_type_slug": SLUG, "charter_field_key": "charter"}
        assert c.put("/api/v1/settings", json=scope).status_code == 200
        wait_until(lambda: len(active(c)) == 8)
        yield c


def active(client: TestClient) -> list[str]:
    return sorted(a["name"] for a in client.get("/api/v1/agents").json()["items"])


def test_a_typo_in_the_organization_is_refused_and_nothing_changes(client: TestClient) -> None:
    before = client.get("/api/v1/settings").json()
    r = client.patch("/api/v1/settings", json={"org_cuid": "org-acme-typo"})
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "no organization 'org-acme-typo'" in message and "Nothing was saved" in message
    assert client.get("/api/v1/settings").json() == before
    assert active(client) == NAMES


def test_a_scope_change_retiring_everyone_is_held_until_allowed(client: TestClient) -> None:
    preview = client.post("/api/v1/settings/preview", json={"org_cuid": "org-2"}).json()
    assert "every one of the 8" in preview["held_reason"]
    r = client.patch("/api/v1/settings", json={"org_cuid": "org-2"})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["held"] is True and sorted(a["name"] for a in error["would_retire"]) == NAMES
    assert "allow_removals" in error["message"] and "Nothing was saved" in error["message"]
    assert client.get("/api/v1/settings").json()["org_cuid"] == ORG
    assert active(client) == NAMES
    allowed = client.patch("/api/v1/settings", json={"org_cuid": "org-2", "allow_removals": True})
    assert allowed.status_code == 200, allowed.text
    assert sorted(a["name"] for a in allowed.json()["retired"]) == NAMES
    assert active(client) == []
