"""Every operator route, walked (identity.md §3, §5.1): anonymously and with an agent token from
the real provider only 401/403; with a viewer, approver and admin token the role table holds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from atryum.identity.principal import role_allows
from atryum.identity.roles import classify
from tests.identity.conftest import API_KEY, auth_config, bearer
from tests.idp.fixtures import Idp

# Not operator routes, and nothing else may be: agent routes (the agent verifier guards them),
# the public ones, and the login itself.
EXEMPT = {
    ("POST", "/api/v1/external/invocations"),
    ("GET", "/api/v1/external/invocations/{invocation_id}"),
    ("PATCH", "/api/v1/external/invocations/{invocation_id}"),
    ("GET", "/api/v1/agent/rules"),
    ("POST", "/api/v1/invocations"),
    ("GET", "/mcp/{server}"),
    ("POST", "/mcp/{server}"),
    ("DELETE", "/mcp/{server}"),
    ("POST", "/api/v1/validmind/events"),  # HMAC-signed by ValidMind
    ("GET", "/.well-known/oauth-protected-resource"),
    ("GET", "/.well-known/oauth-protected-resource/mcp/{server}"),
    ("GET", "/ui/auth/login"),
    ("GET", "/ui/auth/callback"),
    ("POST", "/ui/auth/logout"),
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}
STREAMS = {"/api/v1/review/invocations/stream"}  # an allowed request would never end
# The Go original's reporting routes answer the [api_key] pair only (and operators never).
MACHINE_ONLY = {"/agent_ids", "/invocations/{agent_id}", "/models/{vm_cuid}/invocations"}


def routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    def walk(items: list[Any]) -> Iterator[tuple[str, str]]:
        for r in items:
            if hasattr(r, "original_router"):
                yield from walk(r.original_router.routes)
            elif getattr(r, "methods", None):
                yield from ((m, r.path) for m in sorted(r.methods) if m != "HEAD")

    yield from walk(app.routes)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.fixture
def walk_client(op_idp: Idp, make_client: Any) -> TestClient:
    client: TestClient = make_client(auth_config(op_idp))
    return client


def operator_routes(client: TestClient, admin: str) -> list[tuple[str, str]]:
    found = set(routes(client.app))  # type: ignore[arg-type]
    doc = client.get("/openapi.json", headers=bearer(admin)).json()
    for path, ops in doc["paths"].items():
        for method in ops:
            assert (method.upper(), path) in found, (method, path)  # the document is complete
    exempt = {(m, p) for m, p in found if classify(m, p).kind != "operator"}
    assert exempt == EXEMPT
    return sorted(found - exempt)


def test_no_operator_route_answers_without_an_operator(
    walk_client: TestClient, op_idp: Idp, role_tokens: dict[str, str]
) -> None:
    walked = operator_routes(walk_client, role_tokens["admin"])
    assert len(walked) > 50
    agent = bearer(op_idp.mint("agent-rs"))
    for method, path in walked:
        for headers in ({}, agent, {"Accept": "text/html"}):
            resp = walk_client.request(method, concrete(path), headers=headers, json={})
            assert resp.status_code in (401, 403), (method, path, headers, resp.status_code)


@pytest.mark.parametrize("role", ["viewer", "approver", "admin"])
def test_the_role_table_on_every_operator_route(
    walk_client: TestClient, role_tokens: dict[str, str], role: str
) -> None:
    headers = bearer(role_tokens[role])
    for method, path in operator_routes(walk_client, role_tokens["admin"]):
        needed = classify(method, path).role
        assert needed is not None
        allowed = role_allows(role, needed)  # type: ignore[arg-type]
        if allowed and path in STREAMS | MACHINE_ONLY:
            continue
        resp = walk_client.request(method, concrete(path), headers=headers, json={})
        if allowed:
            assert resp.status_code not in (401, 403), (role, method, path, resp.text[:200])
        else:
            assert resp.status_code == 403, (role, method, path, resp.status_code)
            assert f"has the role {role}; this needs {needed}" in resp.json()["error"]["message"]


def test_the_reporting_routes_answer_the_machine_key(
    walk_client: TestClient, role_tokens: dict[str, str]
) -> None:
    key = {"X-API-KEY": API_KEY["key"], "X-API-SECRET": API_KEY["secret"]}
    walked = {p for _, p in operator_routes(walk_client, role_tokens["admin"])}
    assert walked >= MACHINE_ONLY
    for path in MACHINE_ONLY:
        answer = walk_client.get(concrete(path), headers=key).status_code
        assert answer in (200, 404), path  # 404: no model "x"
        assert (
            walk_client.get(concrete(path), headers=bearer(role_tokens["admin"])).status_code == 401
        )
