"""What the Go original's clients rely on (go-compat.md §2-3), on SQLite and PostgreSQL:
unregistered agents get the rules for all agents, request-id de-duplication only while a call
waits, any JSON as an outcome's error, header/query fallbacks, Go's approve/deny bodies, and
rule fields. (The real hook script against a real process: tests/e2e/test_go_hook.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from atryum.db import migrate
from atryum.gateway import service
from atryum.gateway.settings import GatewayDefaults
from tests.gateway.helpers import DEFAULTS, agent, call, retire, rule
from tests.support import engine_at, make_config

HOOK = "/api/v1/external/invocations"
REVIEW = "/api/v1/review/invocations"


def submit(engine: sa.Engine, req: Any, defaults: GatewayDefaults = DEFAULTS) -> Any:
    inv, _ = service.submit(engine, request=req, caller=None, defaults=defaults)
    return inv


def go_call(client: TestClient, **body: Any) -> Any:
    r = client.post(HOOK, json={"source": "claude-code", "tool": "Bash", "input": {}, **body})
    assert r.status_code in (200, 201), r.text
    return r


# -- unregistered agents (§2) -----------------------------------------------------------------


def test_an_unregistered_agent_gets_only_the_rules_for_all_agents(engine: sa.Engine) -> None:
    bot = agent(engine, "Ops bot", "rt-ops")
    rule(engine, "auto_approve", tools=["Bash"], agents_=[bot.id])
    everyone = rule(engine, "auto_deny", tools=["Bash"])
    inv = submit(engine, call(agent_id="rt-stranger"))
    assert (inv.status, inv.matched_rule_id, inv.agent_record_id) == ("denied", everyone.id, None)
    assert inv.agent_id == "rt-stranger"
    # nothing matches: the default policy decides (a human, by default)
    assert submit(engine, call("Read", agent_id="rt-stranger")).status == "pending_approval"
    assert submit(engine, call(agent_id="rt-ops")).status == "approved"


def test_unregistered_agents_can_be_denied_by_configuration(engine: sa.Engine) -> None:
    strict = GatewayDefaults(unregistered_agents="deny")
    rule(engine, "auto_approve")
    inv = submit(engine, call(agent_id="rt-stranger"), strict)
    assert inv.status == "denied" and inv.matched_rule_id is None
    assert 'unregistered_agents = "deny"' in inv.approval.reason
    # an anonymous call (no agent id at all) is not an unregistered agent
    assert submit(engine, call(), strict).status == "approved"
    agent(engine, "Known", "rt-known")
    assert submit(engine, call(agent_id="rt-known"), strict).status == "approved"


def test_retired_and_disabled_agents_stay_denied_with_global_rules(engine: sa.Engine) -> None:
    rule(engine, "auto_approve")
    gone = agent(engine, "Gone", "rt-gone")
    retire(engine, gone.id)
    agent(engine, "Paused", "rt-paused", enabled=False)
    assert submit(engine, call(agent_id="rt-gone")).status == "denied"
    assert submit(engine, call(agent_id="rt-paused")).status == "denied"


def test_the_config_section_reaches_the_gateway(engine: sa.Engine) -> None:
    config = make_config(policy={"unregistered_agents": "deny"})
    rule(engine, "auto_approve")
    with TestClient(create_app(build_context(config, engine), background=False)) as client:
        r = go_call(client, agent_id="rt-stranger")
        assert r.json()["status"] == "denied"
        advice = client.get("/api/v1/agent/rules", params={"agent_id": "rt-stranger"}).json()
        assert advice["decision"]["outcome"] == "deny"


# -- request id de-duplication (§2) -----------------------------------------------------------


def test_a_request_id_repeats_only_while_the_call_waits(engine: sa.Engine) -> None:
    waiting = submit(engine, call(request_id="Bash:abc"))
    assert waiting.status == "pending_approval"
    assert submit(engine, call(request_id="Bash:abc")).id == waiting.id
    rule(engine, "auto_approve", insert_before="")
    decided = submit(engine, call("Read", request_id="Read:abc"))
    again = submit(engine, call("Read", request_id="Read:abc"))
    assert decided.status == again.status == "approved" and again.id != decided.id
    service.report_outcome(engine, invocation_id=again.id, execution_status="completed")
    third = submit(engine, call("Read", request_id="Read:abc"))
    assert third.id not in (decided.id, again.id)
    # the earlier calls keep their own records
    assert service.get_invocation(engine, invocation_id=again.id).status == "succeeded"


def test_an_idempotency_key_always_returns_the_first_call(engine: sa.Engine) -> None:
    rule(engine, "auto_approve")
    first = submit(engine, call(idempotency_key="k-1"))
    service.report_outcome(engine, invocation_id=first.id, execution_status="completed")
    again = submit(engine, call(idempotency_key="k-1"))
    assert (again.id, again.status) == (first.id, "succeeded")


# -- the hook path over HTTP ------------------------------------------------------------------


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    with TestClient(create_app(build_context(make_config(), engine), background=False)) as c:
        yield c


def test_patch_accepts_any_json_error_and_ignores_unknown_keys(
    client: TestClient, engine: sa.Engine
) -> None:
    rule(engine, "auto_approve")
    inv_id = go_call(client).json()["invocation_id"]
    assert client.patch(f"{HOOK}/{inv_id}", json={"execution_status": "running"}).status_code == 200
    error = {"success": False, "error": "exit 1", "stderr": ["boom"], "code": 1}
    r = client.patch(
        f"{HOOK}/{inv_id}",
        json={"execution_status": "failed", "error": error, "harness_extra": {"x": 1}},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["error"]) == ("failed", error)
    assert client.get(f"{HOOK}/{inv_id}").json()["error"] == error
    events = client.get(f"{REVIEW}/{inv_id}/events").json()["items"]
    assert events[-1]["data"]["error"] == error
    page = client.get(f"/ui/invocations/{inv_id}").text
    assert "exit 1" in page and "boom" in page
    # a plain-text error and a list result still work
    other = go_call(client, tool="Read").json()["invocation_id"]
    r = client.patch(f"{HOOK}/{other}", json={"execution_status": "completed", "result": [1, "a"]})
    assert r.json()["result"] == [1, "a"]


def test_submit_falls_back_to_headers_and_the_query(client: TestClient, engine: sa.Engine) -> None:
    bot = agent(engine, "Ops bot", "rt-ops")
    first = go_call(client, **{}).json()
    r = client.post(
        HOOK,
        json={"source": "claude-code", "tool": "Bash"},
        headers={"Idempotency-Key": "idem-1"},
    )
    again = client.post(
        HOOK,
        json={"source": "claude-code", "tool": "Bash"},
        headers={"Idempotency-Key": "idem-1"},
    )
    assert (r.status_code, again.status_code) == (201, 200)
    assert again.json()["invocation_id"] == r.json()["invocation_id"] != first["invocation_id"]
    assert again.json()["idempotency_key"] == "idem-1"
    by_header = client.post(
        HOOK, json={"source": "claude-code", "tool": "Bash"}, headers={"X-Request-Id": "tu-9"}
    )
    assert by_header.json()["request_id"] == "tu-9"
    # the body wins over a header
    both = client.post(
        HOOK,
        json={"source": "claude-code", "tool": "Bash", "request_id": "tu-body"},
        headers={"X-Request-Id": "tu-header"},
    )
    assert both.json()["request_id"] == "tu-body"
    scoped = client.post(f"{HOOK}?agent_id=rt-ops", json={"source": "claude-code", "tool": "Bash"})
    assert scoped.json()["agent_record_id"] == bot.id


# -- the operator API (§3) --------------------------------------------------------------------


def test_approve_and_deny_take_go_bodies(client: TestClient, engine: sa.Engine) -> None:
    a = go_call(client).json()["invocation_id"]
    r = client.post(f"{REVIEW}/{a}/approve", json={"message": "looks fine", "actor_id": "mallory"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["status"] == "approved"
    assert body["approval"]["reason"] == "looks fine"
    assert body["approval"]["actor_id"] != "mallory"
    d = go_call(client, tool="Write").json()["invocation_id"]
    r = client.post(f"{REVIEW}/{d}/deny", json={"message": "no writes"})
    assert (r.json()["ok"], r.json()["approval"]["reason"]) == (True, "no writes")
    assert client.post(f"{REVIEW}/{d}/deny").status_code == 409


def test_create_rule_lands_before_the_matching_rule(client: TestClient, engine: sa.Engine) -> None:
    bot = agent(engine, "Ops bot", "rt-ops")
    ask = rule(engine, "human_approval", tools=["Bash"])
    tail = rule(engine, "auto_deny")
    inv = go_call(client, agent_id="rt-ops").json()
    assert inv["matched_rule_id"] == ask.id
    r = client.post(
        f"{REVIEW}/{inv['invocation_id']}/approve",
        json={"create_rule": {"action": "auto_approve", "description": "ops may run Bash"}},
    )
    assert r.status_code == 200 and r.json()["ok"] is True
    items = client.get("/api/v1/rules").json()["items"]
    assert [i["id"] for i in items][1:] == [ask.id, tail.id]
    new = items[0]
    assert (new["action"], new["server_patterns"], new["tool_patterns"]) == (
        "auto_approve",
        ["claude-code"],
        ["Bash"],
    )
    assert new["agent_cuids"] == [bot.id] and new["description"] == "ops may run Bash"
    assert go_call(client, agent_id="rt-ops").json()["status"] == "approved"
    # the rule's own patterns win; no matching rule (default policy) → the rule goes last
    read = go_call(client, tool="Read").json()
    assert read["matched_rule_id"] == tail.id
    client.put(f"/api/v1/rules/{tail.id}", json={"action": "auto_deny", "enabled": False})
    other = go_call(client, tool="Grep").json()
    assert other["status"] == "pending_approval" and other["matched_rule_id"] is None
    r = client.post(
        f"{REVIEW}/{other['invocation_id']}/deny",
        json={"create_rule": {"action": "auto_deny", "tool_patterns": ["Grep*"]}},
    )
    assert r.status_code == 200
    last = client.get("/api/v1/rules").json()["items"][-1]
    assert (last["action"], last["tool_patterns"], last["agent_cuids"]) == (
        "auto_deny",
        ["Grep*"],
        [],
    )


def test_a_bad_create_rule_changes_nothing(client: TestClient, engine: sa.Engine) -> None:
    inv_id = go_call(client).json()["invocation_id"]
    r = client.post(
        f"{REVIEW}/{inv_id}/approve",
        json={"create_rule": {"action": "auto_approve", "agent_cuids": ["no-such-agent"]}},
    )
    assert r.status_code == 400 and "no-such-agent" in r.json()["error"]["message"]
    assert client.get(f"{HOOK}/{inv_id}").json()["status"] == "pending_approval"
    assert client.get("/api/v1/rules").json()["items"] == []
    bad = client.post(f"{REVIEW}/{inv_id}/approve", json={"create_rule": {"action": "maybe"}})
    assert bad.status_code == 422 and "create_rule.action" in bad.json()["error"]["message"]


def test_put_without_enabled_keeps_it(client: TestClient, engine: sa.Engine) -> None:
    off = rule(engine, "auto_deny", tools=["Bash"], enabled=False)
    r = client.put(f"/api/v1/rules/{off.id}", json={"action": "auto_deny", "tool_patterns": ["X"]})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert r.json()["tool_patterns"] == ["X"]
    r = client.put(f"/api/v1/rules/{off.id}", json={"action": "auto_deny", "enabled": True})
    assert r.json()["enabled"] is True
    created = client.post("/api/v1/rules", json={"action": "auto_approve"}).json()
    assert created["enabled"] is True


def test_ai_evaluation_rules_keep_their_judge_fields(client: TestClient) -> None:
    r = client.post(
        "/api/v1/rules",
        json={
            "action": "ai_evaluation",
            "atryum_llm_config_id": "llm-1",
            "model_config_cuid": "mc-1",
        },
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    got = client.get(f"/api/v1/rules/{rid}").json()
    assert (got["atryum_llm_config_id"], got["model_config_cuid"]) == ("llm-1", "mc-1")
    r = client.put(
        f"/api/v1/rules/{rid}", json={"action": "ai_evaluation", "model_config_cuid": ""}
    )
    assert (r.json()["atryum_llm_config_id"], r.json()["model_config_cuid"]) == (None, None)


# -- migration 0008 ---------------------------------------------------------------------------


def test_migration_keeps_text_errors_as_json_strings(db_url: str) -> None:
    engine = engine_at(db_url, "0003_identity")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO invocations (id, source, tool, input, status, error, submitted_at, "
                "updated_at) VALUES ('i1', 's', 't', '{}', 'denied', 'it broke', "
                "'2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO invocation_events (id, invocation_id, seq, type, from_status, "
                "status, created_at, data) VALUES ('e1', 'i1', 1, 'received', NULL, 'received', "
                "'2026-01-01', '{}'), ('e2', 'i1', 2, 'x', 'received', 'denied', '2026-01-01', "
                "'{}')"
            )
        )
    migrate.upgrade(engine)
    assert service.get_invocation(engine, invocation_id="i1").error == "it broke"
    with engine.begin() as conn:
        command.downgrade(migrate._alembic_config(conn), "0003_identity")
        error = conn.execute(sa.text("SELECT error FROM invocations")).scalar_one()
    assert "it broke" in error
    migrate.upgrade(engine)
    engine.dispose()
