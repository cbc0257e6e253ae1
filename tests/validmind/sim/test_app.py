"""The simulator's HTTP surface: every ValidMind endpoint, auth, paging, faults, the admin API,
and a real server over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from atryum.validmind.sim.app import (
    API_PREFIX,
    SimServer,
    charter_segments,
    charter_text,
    create_sim_app,
    judge,
)
from atryum.validmind.sim.state import SimState

ORG = "org-1"
SLUG = "ai-agent"
MACHINE = {"X-MACHINE-KEY": "sim-machine-key", "X-MACHINE-SECRET": "sim-machine-secret"}
API_KEY = {"X-API-KEY": "vm-key", "X-API-SECRET": "vm-secret"}
CHARTER = (
    "Purpose: triage claims. May: read claims and draft notes. "
    "May not: pay out or close claims. Refunds need a human approval."
)


@pytest.fixture
def state() -> SimState:
    s = SimState(api_key="vm-key", api_secret="vm-secret", api_key_org=ORG)
    s.add_org(ORG, "Org One")
    s.add_org("org-2", "Org Two")
    s.add_record_type(ORG, SLUG, "AI Agent", cuid="rt-agent")
    s.add_record_type(ORG, "model", "Model", cuid="rt-model")
    s.add_record_type("org-2", SLUG, "AI Agent", cuid="rt-agent-2")
    s.add_custom_field(ORG, SLUG, "charter", "Charter", "long-text")
    s.add_custom_field(ORG, SLUG, "description", "Description", "text")
    return s


@pytest.fixture
def client(state: SimState) -> Iterator[TestClient]:
    with TestClient(create_sim_app(state)) as c:
        yield c


def api(
    c: TestClient, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
) -> Any:
    return c.request(
        method, API_PREFIX + path, headers=MACHINE if headers is None else headers, **kw
    )


def agents(c: TestClient, headers: dict[str, str] | None = None, **params: Any) -> Any:
    params.setdefault("org_cuid", ORG)
    params.setdefault("primary_record_type_slug", SLUG)
    return api(c, "GET", "/agents", headers, params=params)


def make(state: SimState, n: int, **fields: Any) -> list[str]:
    return [
        state.create_record(ORG, SLUG, name=f"Agent {i}", custom_fields=dict(fields))["cuid"]
        for i in range(n)
    ]


def error_message(r: Any) -> str:
    message: str = r.json()["error"]["message"]
    return message


# ---------------------------------------------------------------------- auth
@pytest.mark.parametrize(
    ("headers", "status", "text"),
    [
        ({}, 401, "authentication required"),
        ({"X-MACHINE-KEY": "sim-machine-key"}, 401, "machine user"),
        ({**MACHINE, "X-MACHINE-SECRET": "wrong"}, 401, "machine user"),
        ({"X-API-KEY": "vm-key", "X-API-SECRET": "wrong"}, 401, "API key"),
        ({"X-API-SECRET": "vm-secret"}, 401, "API key"),
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/connection",
        "/organizations",
        "/primary-record-types?org_cuid=org-1",
        "/model-configs",
        f"/agents?org_cuid={ORG}&primary_record_type_slug={SLUG}",
        f"/custom-fields?org_cuid={ORG}&primary_record_type_slug={SLUG}",
    ],
)
def test_bad_credentials_are_401(
    client: TestClient, headers: dict[str, str], status: int, text: str, path: str
) -> None:
    r = api(client, "GET", path, headers)
    assert r.status_code == status
    assert text in error_message(r)
    assert "sim-machine-secret" not in r.text and "vm-secret" not in r.text


def test_post_endpoints_need_auth(client: TestClient) -> None:
    assert (
        api(client, "POST", "/charter-preview", {}, json={"agent_vm_cuid": "x"}).status_code == 401
    )
    body = {"model_config_cuid": "mc-sim-default", "server_name": "s", "tool_name": "t"}
    assert api(client, "POST", "/evaluate", {}, json=body).status_code == 401


def test_org_scoping(client: TestClient, state: SimState) -> None:
    # org from the query, or from the X-Org-CUID header
    assert api(client, "GET", "/primary-record-types?org_cuid=org-2").json()["total"] == 1
    r = api(client, "GET", "/primary-record-types", {**MACHINE, "X-Org-CUID": "org-2"})
    assert r.json()["items"] == [{"cuid": "rt-agent-2", "slug": SLUG, "name": "AI Agent"}]
    # machine mode needs an org; unknown orgs are 404
    r = api(client, "GET", "/primary-record-types")
    assert r.status_code == 400 and "org_cuid" in error_message(r)
    r = api(client, "GET", "/primary-record-types?org_cuid=nope")
    assert r.status_code == 404 and "nope" in error_message(r)
    assert agents(client, org_cuid="nope").status_code == 404
    # an API key is bound to its org: it is the default, other orgs are refused
    r = api(client, "GET", "/primary-record-types", API_KEY)
    assert r.status_code == 200 and r.json()["total"] == 2
    r = api(client, "GET", "/primary-record-types?org_cuid=org-2", API_KEY)
    assert r.status_code == 403 and "bound" in error_message(r)
    assert agents(client, API_KEY, org_cuid="org-2").status_code == 403
    assert agents(client, API_KEY).status_code == 200


# ---------------------------------------------------------------------- endpoints
def test_connection(client: TestClient, state: SimState) -> None:
    body = api(client, "GET", "/connection").json()
    assert body == {
        "ok": True,
        "auth_mode": "machine",
        "machine_user_cuid": state.machine_user_cuid,
        "service_name": "ValidMind simulator",
        "org_cuid": None,
        "org_name": None,
    }
    body = api(client, "GET", "/connection", {**MACHINE, "X-Org-CUID": "org-2"}).json()
    assert (body["org_cuid"], body["org_name"]) == ("org-2", "Org Two")
    body = api(client, "GET", "/connection", API_KEY).json()
    assert body["auth_mode"] == "api_key" and body["machine_user_cuid"] is None
    assert (body["org_cuid"], body["org_name"]) == (ORG, "Org One")


def test_organizations(client: TestClient) -> None:
    body = api(client, "GET", "/organizations").json()
    assert body == {
        "items": [{"cuid": ORG, "name": "Org One"}, {"cuid": "org-2", "name": "Org Two"}],
        "total": 2,
        "auth_mode": "machine",
        "single_org": False,
    }
    body = api(client, "GET", "/organizations", API_KEY).json()
    assert body["items"] == [{"cuid": ORG, "name": "Org One"}] and body["single_org"] is True


def test_record_types_and_custom_fields(client: TestClient) -> None:
    body = api(client, "GET", f"/primary-record-types?org_cuid={ORG}").json()
    assert body == {
        "items": [
            {"cuid": "rt-agent", "slug": SLUG, "name": "AI Agent"},
            {"cuid": "rt-model", "slug": "model", "name": "Model"},
        ],
        "total": 2,
    }
    r = api(client, "GET", f"/custom-fields?org_cuid={ORG}&primary_record_type_slug={SLUG}")
    assert r.json() == {
        "items": [
            {"key": "charter", "name": "Charter", "field_type": "long-text"},
            {"key": "description", "name": "Description", "field_type": "text"},
        ],
        "total": 2,
    }
    r = api(client, "GET", f"/custom-fields?org_cuid={ORG}&primary_record_type_slug=nope")
    assert r.status_code == 404 and "nope" in error_message(r)
    r = api(client, "GET", f"/custom-fields?org_cuid={ORG}")
    assert r.status_code == 422 and "primary_record_type_slug" in error_message(r)


def test_agents_returns_active_records_only(client: TestClient, state: SimState) -> None:
    a, b, c = make(state, 3, charter="c")
    state.create_record(ORG, "model", name="Model")  # another record type
    state.create_record("org-2", SLUG, name="Elsewhere")  # another org
    state.archive_record(b)
    state.delete_record(c)
    body = agents(client).json()
    assert body == {
        "org_cuid": ORG,
        "org_name": "Org One",
        "results": [{"cuid": a, "name": "Agent 0", "custom_fields": {"charter": "c"}}],
        "total": 1,
        "page": 1,
        "limit": 100,
        "next_page": None,
    }
    r = agents(client, primary_record_type_slug="nope")
    assert r.status_code == 404
    assert agents(client, primary_record_type_slug=None).status_code == 422


def test_agents_paging(client: TestClient, state: SimState) -> None:
    cuids = make(state, 7)
    pages = [agents(client, page=p, limit=3).json() for p in (1, 2, 3, 4)]
    assert [[r["cuid"] for r in p["results"]] for p in pages] == [
        cuids[0:3],
        cuids[3:6],
        cuids[6:7],
        [],
    ]
    assert [p["next_page"] for p in pages] == [2, 3, None, None]
    assert {p["total"] for p in pages} == {7}
    # the default limit is 100
    state.bulk_create(ORG, SLUG, count=100)
    first = agents(client).json()
    assert len(first["results"]) == 100 and first["total"] == 107 and first["next_page"] == 2
    assert len(agents(client, page=2).json()["results"]) == 7
    for bad in ({"page": 0}, {"limit": 0}, {"limit": 1001}, {"page": "x"}):
        assert agents(client, **bad).status_code == 422


def test_charter_preview(client: TestClient, state: SimState) -> None:
    direct = state.create_record(ORG, SLUG, name="Direct", custom_fields={"charter": CHARTER})
    nested = state.create_record(
        ORG, SLUG, name="Nested", custom_fields={"model": {"charter": f"<p>{CHARTER}</p>"}}
    )
    for rec in (direct, nested):
        r = api(
            client,
            "POST",
            "/charter-preview",
            json={"agent_vm_cuid": rec["cuid"], "charter_field_key": "charter"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        kinds = [s["kind"] for s in body["segments"]]
        assert kinds == ["context", "allowed", "prohibited", "requires_approval"]
        assert body["segments"][2] == {
            "kind": "prohibited",
            "header": "May not",
            "text": "pay out or close claims.",
        }
        assert "Refunds need a human approval." in body["combined"]
        assert "<p>" not in body["combined"]
    r = api(
        client,
        "POST",
        "/charter-preview",
        json={"agent_vm_cuid": direct["cuid"], "charter_field_key": "other"},
    )
    assert r.json() == {"segments": [], "combined": ""}
    r = api(client, "POST", "/charter-preview", json={"agent_vm_cuid": "missing"})
    assert r.status_code == 404
    state.delete_record(direct["cuid"])
    r = api(client, "POST", "/charter-preview", json={"agent_vm_cuid": direct["cuid"]})
    assert r.status_code == 404
    other = state.create_record("org-2", SLUG, name="Other", custom_fields={"charter": "x"})
    r = api(client, "POST", "/charter-preview", API_KEY, json={"agent_vm_cuid": other["cuid"]})
    assert r.status_code == 404  # outside the API key's org


def test_charter_helpers() -> None:
    assert charter_text({"charter": "a", "model": {"charter": "b"}}, "charter") == "a"
    assert charter_text({"charter": 1, "model": {"charter": "b"}}, "charter") == "b"
    assert charter_text({"model": "x"}, "charter") is None
    assert charter_segments("") == []
    assert charter_segments("Be helpful.") == [
        {"kind": "context", "header": "Context", "text": "Be helpful."}
    ]


@pytest.mark.parametrize(
    ("tool", "verdict"),
    [
        ("delete_branch", "denied"),
        ("rm", "denied"),
        ("fs.rm", "denied"),
        ("dropTable", "denied"),
        ("deploy_service", "human_approval"),
        ("read_file", "approved"),
        ("perform_search", "approved"),  # "rm" inside a word is not rm
    ],
)
def test_judge_is_deterministic(tool: str, verdict: str) -> None:
    assert judge(tool)[0] == verdict
    assert judge(tool) == judge(tool)


def test_evaluate(client: TestClient, state: SimState) -> None:
    rec = state.create_record(ORG, SLUG, name="Claims", custom_fields={"charter": CHARTER})
    base = {
        "model_config_cuid": "mc-sim-default",
        "org_cuid": ORG,
        "agent_vm_cuid": rec["cuid"],
        "agent_tags": ["prod"],
        "charter_field_key": "charter",
        "server_name": "git",
        "tool_args": {"path": "x"},
        "context": {"user": "u"},
    }
    for tool, verdict in [
        ("delete_repo", "denied"),
        ("deploy", "human_approval"),
        ("list_files", "approved"),
    ]:
        r = api(client, "POST", "/evaluate", json={**base, "tool_name": tool})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["verdict"] == verdict
        assert tool in body["reason"] and "Claims" in body["reason"]
        assert body["model"] == "Simulated judge (deterministic)"
        assert body["usage"]["input_tokens"] > len(CHARTER) // 4
        assert isinstance(body["latency_ms"], int) and 0 < body["confidence"] <= 1
    minimal = {"model_config_cuid": "mc-sim-strict", "server_name": "s", "tool_name": "write_file"}
    assert api(client, "POST", "/evaluate", json=minimal).json()["verdict"] == "human_approval"
    r = api(client, "POST", "/evaluate", json={**minimal, "model_config_cuid": "nope"})
    assert r.status_code == 404
    r = api(client, "POST", "/evaluate", json={**minimal, "agent_vm_cuid": "missing"})
    assert r.status_code == 404
    r = api(client, "POST", "/evaluate", API_KEY, json={**minimal, "org_cuid": "org-2"})
    assert r.status_code == 403
    r = api(client, "POST", "/evaluate", json={"server_name": "s"})
    assert r.status_code == 422 and "tool_name" in error_message(r)


def test_model_configs(client: TestClient) -> None:
    body = api(client, "GET", "/model-configs").json()
    assert body["total"] == len(body["items"]) >= 1
    assert {"cuid": "mc-sim-default", "name": "Simulated judge (deterministic)"} in body["items"]


# ---------------------------------------------------------------------- faults
def put_faults(c: TestClient, **faults: Any) -> Any:
    r = c.put("/admin/faults", json=faults)
    assert r.status_code == 200, r.text
    return r.json()["faults"]


def test_fault_status_with_bodies_and_retry_after(client: TestClient, state: SimState) -> None:
    make(state, 2)
    put_faults(client, status=503, retry_after=7)
    r = agents(client)
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert "simulated fault" in error_message(r)
    assert api(client, "GET", "/organizations").status_code == 200  # default: agents only
    put_faults(client, status=500, body="upstream exploded")
    r = agents(client)
    assert (r.status_code, r.text) == (500, "upstream exploded")
    assert r.headers["content-type"].startswith("text/plain") and "retry-after" not in r.headers
    put_faults(client, status=429, body={"detail": "slow down"}, endpoints=["organizations"])
    r = api(client, "GET", "/organizations")
    assert (r.status_code, r.json()) == (429, {"detail": "slow down"})
    assert agents(client).status_code == 200
    put_faults(client, status=502, endpoints=["*"])
    for path in ("/connection", "/model-configs", f"/primary-record-types?org_cuid={ORG}"):
        assert api(client, "GET", path).status_code == 502
    # real auth failures win over injected faults, and do not consume them
    put_faults(client, status=500, times=1)
    assert agents(client, {}).status_code == 401
    assert agents(client).status_code == 500
    assert agents(client).status_code == 200


def test_fault_delay(client: TestClient, state: SimState) -> None:
    make(state, 1)
    put_faults(client, delay_seconds=0.2)
    started = time.monotonic()
    assert agents(client).status_code == 200
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    put_faults(client, delay_seconds=0.2, status=504)
    assert agents(client).status_code == 504
    assert time.monotonic() - started >= 0.2


def test_fault_truncated_pages(client: TestClient, state: SimState) -> None:
    cuids = make(state, 7)
    put_faults(client, truncate_after_page=1)
    pages = [agents(client, page=p, limit=3).json() for p in (1, 2, 3)]
    assert [len(p["results"]) for p in pages] == [3, 0, 0]
    assert {p["total"] for p in pages} == {7}
    assert [r["cuid"] for r in pages[0]["results"]] == cuids[:3]
    put_faults(client, truncate_pages=1)  # drops the last page only
    assert [len(agents(client, page=p, limit=3).json()["results"]) for p in (1, 2, 3)] == [3, 3, 0]


def test_fault_empty_answer(client: TestClient, state: SimState) -> None:
    make(state, 3)
    put_faults(client, empty_answer=True)
    body = agents(client).json()
    assert (body["results"], body["total"], body["org_cuid"]) == ([], 0, ORG)
    assert agents(client, primary_record_type_slug="nope").status_code == 404


def test_fault_wrong_org(client: TestClient, state: SimState) -> None:
    make(state, 2)
    put_faults(client, wrong_org=True)
    body = agents(client).json()
    assert (body["org_cuid"], body["org_name"]) == ("org-2", "Org Two")
    assert body["total"] == 2  # the records themselves are still the right ones


def test_fault_wrong_org_with_a_single_org() -> None:
    state = SimState()
    state.add_org("only", "Only")
    state.add_record_type("only", SLUG, "AI Agent")
    state.set_faults(wrong_org=True)
    with TestClient(create_sim_app(state)) as c:
        r = c.get(
            API_PREFIX + "/agents",
            headers=MACHINE,
            params={"org_cuid": "only", "primary_record_type_slug": SLUG},
        )
        assert r.json()["org_cuid"] not in ("", "only")


def test_fault_malformed_json(client: TestClient, state: SimState) -> None:
    make(state, 2)
    put_faults(client, malformed_json=True, endpoints=["agents", "organizations"])
    for r in (agents(client), api(client, "GET", "/organizations")):
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.text)


def test_fault_ignore_paging(client: TestClient, state: SimState) -> None:
    cuids = make(state, 7)
    put_faults(client, ignore_paging=True)
    pages = [agents(client, page=p, limit=3).json() for p in (1, 2, 3)]
    for body in pages:
        assert [r["cuid"] for r in body["results"]] == cuids[:3]
        assert body["total"] == 7 and "next_page" not in body


def test_fault_drop_cuid(client: TestClient, state: SimState) -> None:
    cuids = make(state, 4)
    put_faults(client, drop_cuid=True)
    first = agents(client, limit=2).json()["results"]
    assert [r["cuid"] for r in first] == ["", cuids[1]]
    second = agents(client, page=2, limit=2).json()["results"]
    assert [r["cuid"] for r in second] == cuids[2:]


def test_faults_combine_count_down_and_clear(client: TestClient, state: SimState) -> None:
    cuids = make(state, 5)
    faults = put_faults(client, wrong_org=True, drop_cuid=True, truncate_after_page=1, times=2)
    assert faults["times"] == 2 and faults["endpoints"] == ["agents"]
    body = agents(client, limit=2).json()
    assert body["org_cuid"] == "org-2" and body["results"][0]["cuid"] == ""
    assert agents(client, page=2, limit=2).json()["results"] == []
    assert client.get("/admin/faults").json() == {"faults": {}}  # used up
    body = agents(client, page=2, limit=2).json()
    assert body["org_cuid"] == ORG and [r["cuid"] for r in body["results"]] == cuids[2:4]
    put_faults(client, status=500)
    r = client.delete("/admin/faults")
    assert r.status_code == 200 and r.json() == {"faults": {}}
    assert agents(client).status_code == 200


def test_invalid_faults_are_refused(client: TestClient) -> None:
    for bad in ({"staus": 500}, {"status": "boom"}, {"endpoints": ["nope"]}):
        r = client.put("/admin/faults", json=bad)
        assert r.status_code == 422 and "invalid faults" in error_message(r)
    assert client.put("/admin/faults", json=[1]).status_code == 422
    assert client.get("/admin/faults").json() == {"faults": {}}


# ---------------------------------------------------------------------- admin API
def test_admin_schema_endpoints(client: TestClient) -> None:
    r = client.post("/admin/orgs", json={"cuid": "org-3", "name": "Org Three"})
    assert r.status_code == 201 and r.json() == {"cuid": "org-3", "name": "Org Three"}
    r = client.post("/admin/record-types", json={"org_cuid": "org-3", "slug": "bot", "name": "Bot"})
    assert r.status_code == 201 and r.json()["slug"] == "bot" and r.json()["cuid"]
    r = client.post(
        "/admin/custom-fields",
        json={
            "org_cuid": "org-3",
            "slug": "bot",
            "key": "charter",
            "name": "Charter",
            "field_type": "long-text",
        },
    )
    assert r.status_code == 201 and r.json()["key"] == "charter"
    r = api(client, "GET", "/custom-fields?org_cuid=org-3&primary_record_type_slug=bot")
    assert r.json()["items"] == [{"key": "charter", "name": "Charter", "field_type": "long-text"}]
    # unknown parents are 404; unknown body fields are refused
    r = client.post("/admin/record-types", json={"org_cuid": "nope", "slug": "x", "name": "X"})
    assert r.status_code == 404 and "nope" in error_message(r)
    assert client.post("/admin/orgs", json={"cuid": "x", "name": "X", "z": 1}).status_code == 422
    assert client.post("/admin/orgs", json={"cuid": "", "name": "X"}).status_code == 422


def test_admin_records(client: TestClient, state: SimState) -> None:
    r = client.post(
        "/admin/records",
        json={"org_cuid": ORG, "slug": SLUG, "name": "A", "custom_fields": {"charter": "c"}},
    )
    assert r.status_code == 201, r.text
    rec = r.json()
    cuid = rec["cuid"]
    assert rec["status"] == "active" and rec["custom_fields"] == {"charter": "c"}
    r = client.post(
        "/admin/records", json={"org_cuid": ORG, "slug": SLUG, "name": "B", "cuid": "fixed"}
    )
    assert r.status_code == 201 and r.json()["cuid"] == "fixed"
    r = client.post(
        "/admin/records", json={"org_cuid": ORG, "slug": SLUG, "name": "B", "cuid": "fixed"}
    )
    assert r.status_code == 409 and "already exists" in error_message(r)
    r = client.post("/admin/records", json={"org_cuid": ORG, "slug": "nope", "name": "C"})
    assert r.status_code == 404

    r = client.patch(f"/admin/records/{cuid}", json={"custom_fields": {"description": "d"}})
    assert r.json()["custom_fields"] == {"charter": "c", "description": "d"}
    assert client.patch(f"/admin/records/{cuid}", json={"name": "A2"}).json()["name"] == "A2"
    assert client.get(f"/admin/records/{cuid}").json()["name"] == "A2"

    assert client.post(f"/admin/records/{cuid}/archive").json()["status"] == "archived"
    assert [x["cuid"] for x in agents(client).json()["results"]] == ["fixed"]
    assert client.post(f"/admin/records/{cuid}/unarchive").json()["status"] == "active"
    assert [x["cuid"] for x in agents(client).json()["results"]] == [cuid, "fixed"]
    r = client.delete(f"/admin/records/{cuid}")
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    assert [x["cuid"] for x in agents(client).json()["results"]] == ["fixed"]
    for method, path in [("DELETE", ""), ("POST", "/archive"), ("POST", "/unarchive")]:
        r = client.request(method, f"/admin/records/{cuid}{path}")
        assert r.status_code == 404 and cuid in error_message(r)
    assert client.patch(f"/admin/records/{cuid}", json={"name": "x"}).status_code == 404
    assert client.get("/admin/records/missing").status_code == 404

    dump = client.get("/admin/state").json()
    assert {r["cuid"]: r["status"] for r in dump["records"]} == {cuid: "deleted", "fixed": "active"}
    assert {o["cuid"] for o in dump["orgs"]} == {ORG, "org-2"}
    assert {rt["slug"] for rt in dump["record_types"]} == {SLUG, "model"}
    assert len(dump["custom_fields"]) == 2
    assert dump["records"][0]["record_type_slug"] == SLUG
    assert dump["faults"] == {} and dump["notify"]["mode"] == "none"
    assert client.get("/admin/health").json() == {"ok": True}


def test_admin_bulk(client: TestClient) -> None:
    r = client.post(
        "/admin/records/bulk",
        json={
            "org_cuid": ORG,
            "slug": SLUG,
            "count": 250,
            "charter_bytes": 2000,
            "name_prefix": "Bench",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] == 250 and len(set(body["cuids"])) == 250
    page = agents(client, page=3, limit=100).json()
    assert page["total"] == 250 and len(page["results"]) == 50
    assert page["results"][-1]["name"] == "Bench 000250"
    assert len(page["results"][0]["custom_fields"]["charter"]) == 2000
    r = client.post("/admin/records/bulk", json={"org_cuid": ORG, "slug": SLUG, "count": -1})
    assert r.status_code == 422


def test_admin_notify_config_hides_secrets(client: TestClient) -> None:
    r = client.put(
        "/admin/notify",
        json={"atryum_url": "http://127.0.0.1:1", "mode": "event", "webhook_secret": "whsec"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["mode"] == "event" and r.json()["webhook_secret_set"] is True
    assert "whsec" not in r.text
    r = client.put(
        "/admin/notify",
        json={"atryum_url": "http://x", "mode": "sync", "api_key": "k", "api_secret": "s3cr3t"},
    )
    assert r.status_code == 200 and "s3cr3t" not in r.text
    assert "s3cr3t" not in client.get("/admin/state").text
    assert client.get("/admin/notify").json()["api_key_set"] is True
    for bad in (
        {"atryum_url": "http://x", "mode": "event"},  # no secret
        {"mode": "sync"},  # no url
        {"atryum_url": "http://x", "mode": "carrier-pigeon"},
        {"atryum_url": "http://x", "mode": "sync", "api_key": "k"},  # half a key
    ):
        r = client.put("/admin/notify", json=bad)
        assert r.status_code == 422, bad
    r = client.put("/admin/notify", json={"mode": "none"})
    assert r.json()["mode"] == "none"


def test_openapi_schema_builds(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert API_PREFIX + "/agents" in paths and "/admin/records/bulk" in paths


# ---------------------------------------------------------------------- real HTTP
def test_sim_server_serves_real_http(state: SimState) -> None:
    state.create_record(ORG, SLUG, name="Live", custom_fields={"charter": "c"})
    server = SimServer(state)
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    assert server.api_url == server.url + API_PREFIX
    with server:
        r = httpx2.get(f"{server.url}{API_PREFIX}/connection", headers=MACHINE, timeout=5)
        assert r.status_code == 200 and r.json()["ok"] is True
        r = httpx2.get(
            f"{server.api_url}/agents",
            params={"org_cuid": ORG, "primary_record_type_slug": SLUG},
            headers=MACHINE,
            timeout=5,
        )
        assert [a["name"] for a in r.json()["results"]] == ["Live"]
        r = httpx2.post(
            f"{server.url}/admin/records",
            json={"org_cuid": ORG, "slug": SLUG, "name": "Posted"},
            timeout=5,
        )
        assert r.status_code == 201
        assert len(state.active_records(ORG, SLUG)[0]) == 2
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{server.url}/admin/health", timeout=2)


def test_two_sim_servers_get_their_own_ports(state: SimState) -> None:
    with SimServer(state) as a, SimServer(SimState()) as b:
        assert a.port != b.port
        assert httpx2.get(f"{a.url}/admin/health", timeout=5).status_code == 200
        assert httpx2.get(f"{b.url}/admin/health", timeout=5).status_code == 200


def test_sim_server_refuses_a_busy_port(state: SimState) -> None:
    with SimServer(state) as a, pytest.raises(OSError):
        SimServer(state, port=a.port)
