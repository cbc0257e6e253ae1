"""The hook path and review API over HTTP (TestClient): status codes, shapes, guards, long-poll."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atryum.gateway import waiting
from atryum.gateway.runtime import runtime_for
from tests.support import wait_until

HOOK = "/api/v1/external/invocations"
REVIEW = "/api/v1/review/invocations"


def post(client: TestClient, tool: str = "Bash", **body: Any) -> dict[str, Any]:
    r = client.post(HOOK, json={"source": "claude-code", "tool": tool, "input": {"a": 1}, **body})
    assert r.status_code in (200, 201), r.text
    data: dict[str, Any] = r.json()
    return data


def add_rule(client: TestClient, action: str, **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/rules", json={"action": action, **body})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def test_submit_answers_the_hook_contract(client: TestClient) -> None:
    rule = add_rule(client, "auto_approve", tool_patterns=["Read"])
    r = client.post(
        HOOK,
        json={
            "source": "claude-code",
            "tool": "Read",
            "input": {"file_path": "/etc/hosts"},
            "description": "read hosts",
            "request_id": "toolu_1",
            "idempotency_key": "sess:toolu_1",
            "thread_id": "t1",
            "client_session_id": "sess",
            "client_name": "claude-code",
            "client_version": "2.0",
            "agent_id": None,
            "some_future_field": "ignored",
        },
    )
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "approved" and body["matched_rule_id"] == rule["id"]
    assert body["approval"]["status"] == "auto_approved"
    assert (body["tool_name"], body["server_name"]) == ("Read", "claude-code")
    for key in ("invocation_id", "agent_id", "submitted_at"):
        assert key in body
    again = client.post(
        HOOK,
        json={
            "source": "claude-code",
            "tool": "Read",
            "input": {"file_path": "/etc/hosts"},
            "idempotency_key": "sess:toolu_1",
        },
    )
    assert again.status_code == 200 and again.json()["invocation_id"] == body["invocation_id"]
    other = client.post(
        HOOK,
        json={
            "source": "claude-code",
            "tool": "Read",
            "input": {"file_path": "/etc/shadow"},
            "idempotency_key": "sess:toolu_1",
        },
    )
    assert other.status_code == 409 and "own input" in other.json()["error"]["message"]
    got = client.get(f"{HOOK}/{body['invocation_id']}")
    assert got.status_code == 200 and got.json() == body


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"tool": "Bash"}, "source"),
        ({"source": "x"}, "tool"),
        ({"source": "x", "tool": "Bash", "input": "rm -rf /"}, "input"),
        # Found by tests/test_openapi.py: a 500 on PostgreSQL (NUL in a text column).
        ({"source": "x", "tool": "Ba\x00sh"}, "NUL"),
    ],
)
def test_bad_submissions_are_clear_422s(client: TestClient, payload: dict, fragment: str) -> None:
    r = client.post(HOOK, json=payload)
    assert r.status_code == 422 and fragment in r.json()["error"]["message"]
    assert client.get(REVIEW).json()["total"] == 0


def test_review_offset_beyond_the_database_is_a_422(client: TestClient) -> None:
    # Found by tests/test_openapi.py: an integer overflow (500) on both dialects.
    r = client.get(REVIEW, params={"offset": 2**63})
    assert r.status_code == 422 and "offset" in r.json()["error"]["message"]


def test_unknown_invocation_is_404(client: TestClient) -> None:
    for r in (
        client.get(f"{HOOK}/nope"),
        client.patch(f"{HOOK}/nope", json={"execution_status": "completed"}),
        client.get(f"{REVIEW}/nope"),
        client.get(f"{REVIEW}/nope/events"),
        client.post(f"{REVIEW}/nope/approve"),
    ):
        assert r.status_code == 404 and "not found" in r.json()["error"]["message"]


def test_outcome_guards_over_http(client: TestClient) -> None:
    pending = post(client)
    r = client.patch(f"{HOOK}/{pending['invocation_id']}", json={"execution_status": "completed"})
    assert r.status_code == 409 and "not approved" in r.json()["error"]["message"]
    assert client.get(f"{HOOK}/{pending['invocation_id']}").json()["status"] == "pending_approval"
    r = client.patch(f"{HOOK}/{pending['invocation_id']}", json={"execution_status": "done"})
    assert r.status_code == 422
    add_rule(client, "auto_approve", tool_patterns=["Read"])
    ok = post(client, "Read")
    url = f"{HOOK}/{ok['invocation_id']}"
    assert client.patch(url, json={"execution_status": "running"}).json()["status"] == "executing"
    done = client.patch(url, json={"execution_status": "completed", "result": {"n": 1}})
    assert done.status_code == 200 and done.json()["result"] == {"n": 1}
    assert client.patch(url, json={"execution_status": "completed"}).status_code == 200
    r = client.patch(url, json={"execution_status": "failed", "error": "x"})
    assert r.status_code == 409 and "already has its outcome" in r.json()["error"]["message"]
    assert client.get(url).json()["result"] == {"n": 1}


def test_review_approve_deny_and_events(client: TestClient) -> None:
    a, b = post(client), post(client)
    r = client.post(f"{REVIEW}/{a['invocation_id']}/approve", json={"reason": "fine"})
    assert r.status_code == 200
    assert r.json()["status"] == "approved"
    assert r.json()["approval"] | {"decision_at": None, "requested_at": None} == {
        "status": "approved",
        "reason": "fine",
        "actor_id": "operator",
        "requested_at": None,
        "expires_at": a["approval"]["expires_at"],
        "decision_at": None,
    }
    assert client.post(f"{REVIEW}/{b['invocation_id']}/deny").json()["status"] == "denied"
    again = client.post(f"{REVIEW}/{a['invocation_id']}/deny")
    assert again.status_code == 409 and "not pending" in again.json()["error"]["message"]
    # Go's `actor_id` is accepted and ignored: the actor is the operator calling (go-compat §3)
    forged = client.post(f"{REVIEW}/{b['invocation_id']}/approve", json={"actor_id": "mallory"})
    assert forged.status_code == 409 and "mallory" not in forged.text
    events = client.get(f"{REVIEW}/{a['invocation_id']}/events").json()["items"]
    assert [(e["type"], e["actor"]) for e in events] == [
        ("received", None),
        ("pending_approval", None),
        ("approved", "operator"),
    ]
    assert events[1]["data"]["decided_by"] == "default_policy"
    detail = client.get(f"{REVIEW}/{a['invocation_id']}").json()
    assert detail["status"] == "approved"


def test_review_list_filters_and_pages(client: TestClient) -> None:
    add_rule(client, "auto_approve", tool_patterns=["Read"])
    post(client, "Read", agent_id=None)
    post(client, "Bash")
    post(client, "Bash", source="cursor")
    page = client.get(REVIEW, params={"limit": 2}).json()
    assert (page["total"], len(page["items"]), page["offset"], page["limit"]) == (3, 2, 0, 2)
    rest = client.get(REVIEW, params={"limit": 2, "offset": 2}).json()
    assert len(rest["items"]) == 1
    seen = {i["invocation_id"] for i in page["items"] + rest["items"]}
    assert len(seen) == 3
    assert client.get(REVIEW, params={"status": "pending_approval"}).json()["total"] == 2
    both = client.get(REVIEW, params={"status": "approved,pending_approval"}).json()
    assert both["total"] == 3
    assert client.get(REVIEW, params={"source": "cursor"}).json()["total"] == 1
    assert client.get(REVIEW, params={"tool": "Read"}).json()["total"] == 1
    future = client.get(REVIEW, params={"since": "2999-01-01T00:00:00Z"}).json()
    assert future["total"] == 0
    assert client.get(REVIEW, params={"limit": 0}).status_code == 422


def test_review_list_filters_by_agent(client: TestClient) -> None:
    bot = client.post("/api/v1/agents", json={"name": "Bot", "agent_ids": ["rt-bot"]}).json()
    add_rule(client, "auto_approve")
    post(client, agent_id="rt-bot")
    post(client)
    assert client.get(REVIEW, params={"agent": bot["cuid"]}).json()["total"] == 1
    assert client.get(REVIEW, params={"agent": "rt-bot"}).json()["total"] == 1


def test_long_poll_returns_when_the_decision_lands(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The re-read fallback is made longer than the test's patience, so only the decision's
    # wake-up can answer the long-poll in time.
    monkeypatch.setattr(waiting, "RECHECK_LOCAL", 60.0)
    monkeypatch.setattr(waiting, "RECHECK_NOTIFIED", 60.0)
    app: Any = client.app
    hub = runtime_for(app.state.ctx).hub
    inv = post(client)
    url = f"{HOOK}/{inv['invocation_id']}"
    quick = client.get(url, params={"wait": 0.2})
    assert quick.json()["status"] == "pending_approval"
    answer: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        answer["body"] = client.get(url, params={"wait": 30}).json()
        answer["took"] = time.monotonic() - started

    watching = hub.subscriber_count()
    t = threading.Thread(target=poll)
    t.start()
    wait_until(lambda: hub.subscriber_count() > watching)  # the long-poll is waiting
    client.post(f"{REVIEW}/{inv['invocation_id']}/approve")
    t.join(40)
    assert answer["body"]["status"] == "approved"
    assert answer["took"] < 20  # it answered on the change, not at the end of its wait
    assert client.get(url, params={"wait": 31}).status_code == 422


def test_long_poll_sees_expiry(client: TestClient) -> None:
    client.put("/api/v1/policy", json={"approval_timeout_seconds": 1})
    inv = post(client)
    body = client.get(f"{HOOK}/{inv['invocation_id']}", params={"wait": 15}).json()
    assert body["status"] == "expired" and body["approval"]["status"] == "expired"


def test_metrics_count_decisions_and_pending(client: TestClient) -> None:
    post(client)
    text = client.get("/metrics").text
    assert "atryum_gateway_pending_approvals 1.0" in text
    assert 'atryum_gateway_decisions_total{decision="pending_approval",rule="none"}' in text
    assert "atryum_gateway_decision_seconds_bucket" in text
