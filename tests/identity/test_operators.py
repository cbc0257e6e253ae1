"""Operator routes once [[auth]] is enabled (identity.md §2-3, §5.1, §5.2, §5.5): who gets in,
what each role may do, the machine key's limits, four eyes, and what never leaks."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.agents import service as agents
from atryum.audit import AuditFilter, list_changes
from atryum.db.tables import operator_api_tokens
from atryum.identity import api_tokens
from atryum.identity.principal import CLI
from tests.identity.conftest import API_KEY, auth_config, bearer
from tests.idp.fixtures import Idp


@pytest.fixture
def client(op_idp: Idp, make_client: Any) -> TestClient:
    """Atryum whose one [[auth]] block also admits operators (admin_enabled, UI login)."""
    c: TestClient = make_client(auth_config(op_idp))
    return c


RULE = {"action": "auto_deny", "tool_patterns": ["rm"], "description": "no rm"}


def submit(client: TestClient, agent_id: str, token: str | None = None) -> dict[str, Any]:
    """A call that waits for a human (default policy manual_approval, no rule matches). With
    auth on, the token names the agent and the body's `agent_id` is ignored."""
    resp = client.post(
        "/api/v1/external/invocations",
        json={
            "source": "claude-code",
            "tool": "Bash",
            "input": {"cmd": "ls"},
            "agent_id": agent_id,
        },
        headers=bearer(token) if token else {},
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status"] == "pending_approval", body
    return body


def test_no_credential_reaches_no_operator_route(client: TestClient) -> None:
    for method, path in [
        ("GET", "/api/v1/rules"),
        ("POST", "/api/v1/rules"),
        ("PUT", "/api/v1/policy"),
        ("GET", "/api/v1/audit"),
        ("POST", "/api/v1/tokens"),
        ("GET", "/openapi.json"),
    ]:
        resp = client.request(method, path, json=RULE)
        assert resp.status_code == 401, (method, path, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert "log in" in resp.json()["error"]["message"]
    page = client.get("/ui/rules", headers={"Accept": "text/html"})
    assert page.status_code == 401
    assert "Log in with 127.0.0.1" in page.text
    assert client.get("/healthz").status_code == 200


def test_agent_tokens_and_bad_tokens_never_reach_operator_routes(
    client: TestClient, op_idp: Idp
) -> None:
    agent = op_idp.mint("agent-rs")
    for method, path in [("GET", "/api/v1/rules"), ("POST", "/api/v1/rules")]:
        resp = client.request(method, path, json=RULE, headers=bearer(agent))
        assert resp.status_code == 403, resp.text
        assert "no operator role" in resp.json()["error"]["message"]
    forged = agent[:-8] + ("A" * 8 if not agent.endswith("A" * 8) else "B" * 8)
    for token in (forged, "not-a-jwt", "x" * 20_000, api_tokens.PREFIX + "made-up"):
        resp = client.get("/api/v1/rules", headers=bearer(token))
        assert resp.status_code == 401, (token[:20], resp.text)
        assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    resp = client.get("/api/v1/rules", headers={"Authorization": "Basic abc"})
    assert resp.status_code == 401


def test_an_agent_token_of_a_block_without_admin_is_refused(op_idp: Idp, make_client: Any) -> None:
    client = make_client(auth_config(op_idp, block={"admin_enabled": False}))
    resp = client.get("/api/v1/rules", headers=bearer(op_idp.mint("operator-bot")))
    assert resp.status_code == 403
    assert "admin_enabled = false" in resp.json()["error"]["message"]


def test_the_role_table(
    client: TestClient, role_tokens: dict[str, str], engine: sa.Engine, op_idp: Idp
) -> None:
    agents.create_manual_agent(engine, name="Coder", agent_ids=["agent-rs"])
    viewer, approver, admin = (bearer(role_tokens[r]) for r in ("viewer", "approver", "admin"))
    pending = [submit(client, "x", op_idp.mint("agent-rs"))["invocation_id"] for _ in range(2)]

    assert client.get("/api/v1/rules", headers=viewer).status_code == 200
    assert client.get("/api/v1/review/invocations", headers=viewer).status_code == 200
    refused = client.post("/api/v1/rules", json=RULE, headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == (
        "viewer-token has the role viewer; this needs admin"
    )
    assert (
        client.post(f"/api/v1/review/invocations/{pending[0]}/approve", headers=viewer).status_code
        == 403
    )

    assert client.post("/api/v1/rules", json=RULE, headers=approver).status_code == 403
    assert (
        client.put(
            "/api/v1/policy", json={"provider": "always_approve"}, headers=approver
        ).status_code
        == 403
    )
    approved = client.post(
        f"/api/v1/review/invocations/{pending[0]}/approve",
        json={"reason": "fine"},
        headers=approver,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["approval"]["actor_id"].startswith("approver-token <atryum#api_token:")

    assert client.post("/api/v1/rules", json=RULE, headers=admin).status_code == 201
    assert (
        client.post(f"/api/v1/review/invocations/{pending[1]}/deny", headers=admin).status_code
        == 200
    )
    assert (
        client.post(
            "/api/v1/tokens", json={"name": "x", "role": "viewer"}, headers=approver
        ).status_code
        == 403
    )


def test_a_decision_records_the_operator_in_its_event(
    client: TestClient, role_tokens: dict[str, str], engine: sa.Engine, op_idp: Idp
) -> None:
    agents.create_manual_agent(engine, name="Coder", agent_ids=["agent-rs"])
    inv = submit(client, "x", op_idp.mint("agent-rs"))["invocation_id"]
    headers = bearer(role_tokens["approver"])
    forged = {"reason": "ok", "actor_id": "someone-else"}  # a body actor is never trusted
    assert (
        client.post(
            f"/api/v1/review/invocations/{inv}/approve", json=forged, headers=headers
        ).status_code
        == 422
    )
    ok = client.post(
        f"/api/v1/review/invocations/{inv}/approve", json={"reason": "ok"}, headers=headers
    )
    assert ok.status_code == 200
    events = client.get(f"/api/v1/review/invocations/{inv}/events", headers=headers).json()
    decided = events["items"][-1]
    assert decided["status"] == "approved"
    assert decided["data"]["operator"]["name"] == "approver-token"
    assert decided["data"]["operator"]["method"] == "api_token"
    assert "someone-else" not in str(events)


def test_admin_claim_bearer_tokens_are_operators(
    client: TestClient, op_idp: Idp, engine: sa.Engine
) -> None:
    token = op_idp.mint("operator-bot")  # carries atryum_role = admin
    created = client.post("/api/v1/rules", json=RULE, headers=bearer(token))
    assert created.status_code == 201, created.text
    me = client.get("/api/v1/operator", headers=bearer(token)).json()
    assert me == {
        "issuer": op_idp.issuer,
        "subject": "operator-bot",
        "name": "operator-bot",
        "method": "bearer",
        "role": "admin",
    }
    with engine.connect() as conn:
        items, _ = list_changes(conn, flt=AuditFilter(entity="rule"), offset=0, limit=5)
    assert items[0].actor == f"{op_idp.issuer}#operator-bot"


def test_go_admin_claim_alone_means_admin(op_idp: Idp, make_client: Any) -> None:
    # the role claim is looked for under another name: only the Go admin claim is left
    client = make_client(auth_config(op_idp, operator={"role_claim": "no_such_claim"}))
    token = op_idp.mint("operator-bot")
    assert client.post("/api/v1/rules", json=RULE, headers=bearer(token)).status_code == 201
    other = make_client(
        auth_config(op_idp, operator={"role_claim": "x"}, block={"admin_claim_value": "false"})
    )
    assert other.get("/api/v1/rules", headers=bearer(token)).status_code == 403


def test_four_eyes_the_same_identity_may_not_decide(
    client: TestClient, op_idp: Idp, engine: sa.Engine
) -> None:
    agents.create_manual_agent(engine, name="Bot", agent_ids=["operator-bot"])
    token = op_idp.mint("operator-bot")
    inv = submit(client, "operator-bot", token)["invocation_id"]
    resp = client.post(f"/api/v1/review/invocations/{inv}/approve", headers=bearer(token))
    assert resp.status_code == 403
    assert "four eyes" in resp.json()["error"]["message"]
    still = client.get(f"/api/v1/review/invocations/{inv}", headers=bearer(token)).json()
    assert still["status"] == "pending_approval"


def test_four_eyes_another_identity_of_the_same_agent_may_not_decide(
    client: TestClient, op_idp: Idp, engine: sa.Engine, role_tokens: dict[str, str]
) -> None:
    agents.create_manual_agent(engine, name="Pair", agent_ids=["agent-rs", "operator-bot"])
    inv = submit(client, "agent-rs", op_idp.mint("agent-rs"))["invocation_id"]
    operator_bot = bearer(op_idp.mint("operator-bot"))
    for verb in ("approve", "deny"):
        resp = client.post(f"/api/v1/review/invocations/{inv}/{verb}", headers=operator_bot)
        assert resp.status_code == 403, resp.text
    # someone else may
    ok = client.post(
        f"/api/v1/review/invocations/{inv}/deny", headers=bearer(role_tokens["approver"])
    )
    assert ok.status_code == 200


def test_the_machine_key_only_triggers_syncs_and_reads(client: TestClient) -> None:
    key = {"X-API-KEY": API_KEY["key"], "X-API-SECRET": API_KEY["secret"]}
    assert client.get("/api/v1/agents/sync/runs", headers=key).status_code == 200
    assert client.get("/api/v1/rules", headers=key).status_code == 200
    sync = client.post("/api/v1/agents/sync", headers=key)
    assert sync.status_code not in (401, 403)  # 503: ValidMind is not configured here
    for method, path in [
        ("POST", "/api/v1/rules"),
        ("PUT", "/api/v1/policy"),
        ("POST", "/api/v1/review/invocations/x/approve"),
        ("GET", "/ui/rules"),
    ]:
        assert client.request(method, path, json=RULE, headers=key).status_code == 403, path
    wrong = {**key, "X-API-SECRET": "wrong"}
    assert client.get("/api/v1/rules", headers=wrong).status_code == 401


def test_tokens_expire_are_revoked_and_record_their_last_use(
    client: TestClient, engine: sa.Engine, role_tokens: dict[str, str]
) -> None:
    admin = bearer(role_tokens["admin"])
    created = client.post(
        "/api/v1/tokens", json={"name": "ci", "role": "viewer", "expires_in": "2h"}, headers=admin
    )
    assert created.status_code == 201
    value, token_id = created.json()["token"], created.json()["id"]
    assert value.startswith(api_tokens.PREFIX)
    assert client.get("/api/v1/rules", headers=bearer(value)).status_code == 200
    listed = client.get("/api/v1/tokens", headers=admin)
    assert value not in listed.text
    row = next(t for t in listed.json()["items"] if t["id"] == token_id)
    assert row["last_used_at"] is not None and row["state"] == "active"
    with engine.connect() as conn:
        stored = conn.execute(sa.select(operator_api_tokens.c.token_hash)).scalars().all()
    assert value not in stored and all(len(h) == 64 for h in stored)

    assert client.delete(f"/api/v1/tokens/{token_id}", headers=admin).json()["state"] == "revoked"
    assert client.get("/api/v1/rules", headers=bearer(value)).status_code == 401

    _, expired = api_tokens.create_token(
        engine, name="old", role="admin", expires_in=timedelta(seconds=1), actor=CLI
    )
    with engine.begin() as conn:
        conn.execute(
            operator_api_tokens.update()
            .where(operator_api_tokens.c.name == "old")
            .values(expires_at=operator_api_tokens.c.created_at)
        )
    assert client.get("/api/v1/rules", headers=bearer(expired)).status_code == 401

    for bad in [
        {"name": "x", "role": "root"},
        {"name": "x", "role": "viewer", "expires_in": "0d"},
        {"name": "x", "role": "viewer", "expires_in": "forever"},
        {"name": "x", "role": "viewer", "expires_in": "99999d"},
    ]:
        resp = client.post("/api/v1/tokens", json=bad, headers=admin)
        assert resp.status_code == 400, (bad, resp.text)
    with engine.connect() as conn:
        actions = [
            e.action
            for e in list_changes(conn, flt=AuditFilter(entity="api_token"), offset=0, limit=50)[0]
        ]
    assert actions.count("create") == 5 and actions.count("revoke") == 1


def test_no_secret_in_logs_or_answers(
    client: TestClient, op_idp: Idp, role_tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = op_idp.mint("agent-rs")
    operator = op_idp.mint("operator-bot")
    admin = bearer(role_tokens["admin"])
    client.get("/api/v1/rules", headers=bearer(agent))
    client.get("/api/v1/rules", headers=bearer(agent + "x"))
    client.post("/api/v1/rules", json=RULE, headers=bearer(operator))
    created = client.post("/api/v1/tokens", json={"name": "n", "role": "viewer"}, headers=admin)
    new_value = created.json()["token"]
    answers = [
        client.get(path, headers=admin).text
        for path in ("/api/v1/tokens", "/api/v1/audit", "/ui/tokens", "/ui/audit", "/metrics")
    ]
    secrets = [
        agent,
        operator,
        new_value,
        *role_tokens.values(),
        API_KEY["secret"],
        op_idp.login_client.client_secret,
    ]
    logged = caplog.text
    for secret in secrets:
        assert secret not in logged
        assert all(secret not in answer for answer in answers)
