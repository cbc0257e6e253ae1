"""GET /api/v1/audit over HTTP: each operator change once, newest first, filters and paging."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from tests.support import make_config


def test_changes_through_the_api_are_listed_with_their_operator(engine: sa.Engine) -> None:
    app = create_app(build_context(make_config(), engine), background=False)
    with TestClient(app) as c:
        rule = c.post("/api/v1/rules", json={"action": "auto_deny", "tool_patterns": ["rm"]})
        rule_id = rule.json()["id"]
        c.put(f"/api/v1/rules/{rule_id}", json={"action": "auto_deny", "tool_patterns": ["rm*"]})
        c.put("/api/v1/policy", json={"provider": "always_deny"})
        agent = c.post("/api/v1/agents", json={"name": "Coder", "agent_ids": ["coder"]}).json()
        c.patch(f"/api/v1/agents/{agent['cuid']}", json={"enabled": False})
        c.delete(f"/api/v1/agents/{agent['cuid']}")
        c.patch("/api/v1/settings", json={"charter_field_key": "policy"})
        c.delete(f"/api/v1/rules/{rule_id}")

        page = c.get("/api/v1/audit").json()
        assert page["total"] == 8 and page["offset"] == 0 and page["limit"] == 50
        seen = [(e["entity"], e["action"]) for e in page["items"]]
        assert seen == [
            ("rule", "delete"),
            ("settings", "update"),
            ("agent", "delete"),
            ("agent", "update"),
            ("agent", "create"),
            ("policy", "update"),
            ("rule", "update"),
            ("rule", "create"),
        ]
        assert {e["actor"] for e in page["items"]} == {"operator"}
        update = page["items"][6]
        assert update["before"]["tool_patterns"] == ["rm"]
        assert update["after"]["tool_patterns"] == ["rm*"]
        policy = page["items"][5]
        assert policy["before"]["provider"] == "manual_approval"
        assert policy["after"]["provider"] == "always_deny"
        disabled = page["items"][3]
        assert (disabled["before"]["enabled"], disabled["after"]["enabled"]) == (True, False)

        agents = c.get("/api/v1/audit", params={"entity": "agent", "limit": 2}).json()
        assert agents["total"] == 3 and len(agents["items"]) == 2
        assert c.get("/api/v1/audit", params={"actor": "nobody"}).json()["total"] == 0
        later = c.get("/api/v1/audit", params={"since": "2999-01-01T00:00:00"}).json()
        assert later["total"] == 0
        assert c.get("/api/v1/audit", params={"since": "yesterday"}).status_code == 422
        assert c.get("/api/v1/audit", params={"limit": 0}).status_code == 422
        page_html = c.get("/ui/audit?entity=rule").text
        assert page_html.count('data-entity="rule"') == 3
