"""The hot routes' shortcut (hook submit and report, `/mcp/{server}`) answers as the rest of the
app does, over real HTTP on both databases: the same refusals of bad input (nothing stored), the
app-wide checks, the gate in front (Host check, security headers), and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from atryum.db.tables import invocations
from atryum.gateway import api_hook
from atryum.mcp import routes as mcp_routes
from tests.gateway.live import HOOK
from tests.support import LiveServer, make_config

KEY = {"X-API-Key": "k", "X-API-Secret": "s"}
CALL = {"source": "claude-code", "tool": "Read", "input": {"file_path": "/x"}}


@pytest.fixture
def server(engine: sa.Engine, live_atryum: Any) -> Iterator[LiveServer]:
    with live_atryum(make_config(api_key={"key": "k", "secret": "s"}), engine) as s:
        yield s


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.url, timeout=20) as client:
        rule = {"action": "auto_approve", "tool_patterns": ["Read"]}
        assert client.post("/api/v1/rules", json=rule).status_code == 201
        yield client


def stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(invocations)).scalar_one())


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("content", "headers", "params", "expected"),
    [
        (b"", JSON, {}, "body: Field required"),
        (b'{"source": "claude-code", "tool": "Read"}', {"Content-Type": "text/plain"}, {},
         "send the body as JSON"),
        (b'{"source": "claude-code", "tool": ', JSON, {}, "Invalid JSON"),
        (b'{"source": "claude-code"}', JSON, {}, "tool: Field required"),
        (b'{"source": "claude-code", "tool": "R\\u0000"}', JSON, {}, "tool: must not contain NUL"),
        (b'{"source": "c", "tool": "Read", "wait_seconds": "5"}', JSON, {},
         "wait_seconds: Input should be a valid integer"),
        (b'{"source": "c", "tool": "Read"}', {**JSON, "Idempotency-Key": "k" * 257}, {},
         "header.Idempotency-Key: String should have at most 256 characters"),
        (b'{"source": "c", "tool": "Read"}', {**JSON, "X-Request-Id": "r" * 257}, {},
         "header.X-Request-Id: String should have at most 256 characters"),
        (b'{"source": "c", "tool": "Read"}', JSON, {"agent_id": "a" * 257},
         "query.agent_id: String should have at most 256 characters"),
        (b'{"source": "c", "tool": "Read"}', JSON, {"agent_id": "a\x00"},
         "query.agent_id: must not contain NUL"),
    ],
)  # fmt: skip
def test_a_bad_submission_is_refused_with_a_clear_error_and_nothing_stored(
    http: httpx2.Client,
    engine: sa.Engine,
    content: bytes,
    headers: dict[str, str],
    params: dict[str, str],
    expected: str,
) -> None:
    r = http.post(HOOK, content=content, headers=headers, params=params)
    assert r.status_code == 422, r.text
    assert expected in r.json()["error"]["message"]
    assert stored(engine) == 0


def test_a_bad_report_is_refused_and_the_invocation_is_unchanged(http: httpx2.Client) -> None:
    inv = http.post(HOOK, json=CALL).json()
    for content, expected in [
        (b'{"execution_status": "finished"}', "execution_status: Input should be"),
        (b"{", "Invalid JSON"),
        (b"", "body: Field required"),
    ]:
        r = http.patch(f"{HOOK}/{inv['invocation_id']}", content=content, headers=JSON)
        assert r.status_code == 422, r.text
        assert expected in r.json()["error"]["message"]
    assert http.get(f"{HOOK}/{inv['invocation_id']}").json()["status"] == "approved"
    done = http.patch(f"{HOOK}/{inv['invocation_id']}", json={"execution_status": "completed"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "succeeded"
    missing = http.patch(f"{HOOK}/nope", json={"execution_status": "completed"})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"]


def test_a_wrong_machine_key_is_refused_on_every_hot_route(
    http: httpx2.Client, engine: sa.Engine
) -> None:
    wrong = {"X-API-Key": "k", "X-API-Secret": "wrong"}
    inv = http.post(HOOK, json=CALL, headers=KEY)
    assert inv.status_code == 201, inv.text
    done = {"execution_status": "completed"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    attempts = [
        http.post(HOOK, json=CALL, headers=wrong),
        http.patch(f"{HOOK}/{inv.json()['invocation_id']}", json=done, headers=wrong),
        http.post("/mcp/calc", json=ping, headers=wrong),
    ]
    for r in attempts:
        assert r.status_code == 401, r.text
        assert r.json()["error"]["message"] == "invalid machine API key or secret"
    assert stored(engine) == 1
    assert http.get(f"{HOOK}/{inv.json()['invocation_id']}").json()["status"] == "approved"


def test_hot_routes_pass_the_host_check_and_carry_the_security_headers(
    http: httpx2.Client,
) -> None:
    r = http.post(HOOK, json=CALL)
    assert r.status_code == 201
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    rebound = http.post(HOOK, json=CALL, headers={"Host": "evil.example:8080"})
    assert rebound.status_code in (400, 421), rebound.text
    assert rebound.json()["error"]["message"]


def test_every_hot_route_is_in_the_openapi_document_with_its_body_and_parameters() -> None:
    app = create_app(build_context(make_config(), sa.create_engine("sqlite://")), background=False)
    doc = TestClient(app).get("/openapi.json").json()
    hot = [*api_hook.hot.routes, *mcp_routes.hot.routes]
    assert len(hot) == 3
    for route in hot:
        (method,) = route.methods or {""}
        operation = doc["paths"][route.path][method.lower()]
        documented = {p["name"] for p in operation.get("parameters", [])}
        assert set(route.param_convertors) <= documented, route.path
    submit = doc["paths"][HOOK]["post"]
    assert {"Idempotency-Key", "X-Request-Id", "agent_id"} <= {
        p["name"] for p in submit["parameters"]
    }
    body = submit["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["source", "tool"]
    assert "422" in submit["responses"]
