"""End-to-end over real HTTP (uvicorn on a port): the hook path, human review, expiry, agents
retired by a real sync against the ValidMind simulator, restarts and replicas."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from atryum.config import Config
from atryum.db.engine import make_engine
from atryum.gateway import waiting
from atryum.gateway.runtime import runtime_for
from tests.e2e.processes import AtryumProcess
from tests.gateway.live import Api, Poller, SSEReader
from tests.support import ORG, SLUG, LiveServer, make_config, wait_until

Live = Callable[..., LiveServer]


def test_decisions_over_http(engine: sa.Engine, live_atryum: Live) -> None:
    with live_atryum(make_config(), engine) as server, Api(server.url) as api:
        scoped_bot = api.ok(
            api.http.post("/api/v1/agents", json={"name": "Bot", "agent_ids": ["rt-bot"]}), 201
        )
        api.ok(
            api.http.post("/api/v1/agents", json={"name": "Other", "agent_ids": ["rt-other"]}), 201
        )
        api.ok(
            api.http.post(
                "/api/v1/agents",
                json={"name": "Paused", "agent_ids": ["rt-paused"], "enabled": False},
            ),
            201,
        )
        api.rule("auto_approve", tool_patterns=["Read"])
        api.rule("auto_deny", tool_patterns=["mcp__github__*"])
        api.rule("auto_approve", tool_patterns=["Deploy"])
        api.rule(
            "auto_deny",
            tool_patterns=["Deploy"],
            agent_cuids=[scoped_bot["cuid"]],
            insert_before="",
        )

        # auto-approve, auto-deny
        assert api.submit("Read")["status"] == "approved"
        denied = api.submit("mcp__github__merge_pull_request")
        assert denied["status"] == "denied" and denied["approval"]["status"] == "auto_denied"
        # an agent-scoped deny above an all-agents approve
        assert api.submit("Deploy", agent_id="rt-bot")["status"] == "denied"
        assert api.submit("Deploy", agent_id="rt-other")["status"] == "approved"
        # a disabled agent is denied, whatever the rules say
        paused = api.submit("Read", agent_id="rt-paused")
        assert paused["status"] == "denied"
        assert paused["approval"]["reason"] == "agent Paused is disabled"

        # human approve and human deny, while the harness long-polls
        for verb, final in (("approve", "approved"), ("deny", "denied")):
            inv = api.submit("Bash")
            assert inv["status"] == "pending_approval"
            with Poller(api, inv["invocation_id"]) as answer:
                decided = api.decide(inv["invocation_id"], verb, reason=f"{verb} by test")
            assert decided["status"] == final == answer["status"]
            assert answer["approval"]["reason"] == f"{verb} by test"

        # expiry: nobody decides within the approval timeout
        api.ok(api.http.put("/api/v1/policy", json={"approval_timeout_seconds": 1}))
        inv = api.submit("Bash")
        expired = wait_until(
            lambda: (b := api.poll(inv["invocation_id"], wait=5))["status"] == "expired" and b
        )
        assert expired["approval"]["status"] == "expired"
        late = api.http.post(f"/api/v1/review/invocations/{inv['invocation_id']}/approve")
        assert late.status_code == 409


def test_retired_agent_denied_then_restored_by_unarchive(
    engine: sa.Engine, sim: Any, sim_config: Callable[..., Config], live_atryum: Live
) -> None:
    with contextlib.ExitStack() as stack:
        _retired_then_restored(stack, sim, sim_config, engine, live_atryum)


def _retired_then_restored(
    stack: contextlib.ExitStack,
    sim: Any,
    sim_config: Callable[..., Config],
    engine: sa.Engine,
    live_atryum: Live,
) -> None:
    admin = stack.enter_context(httpx2.Client(base_url=f"{sim.url}/admin", timeout=10))
    r = admin.post(
        "/records",
        json={
            "org_cuid": ORG,
            "slug": SLUG,
            "name": "Code Review",
            "custom_fields": {"charter": "May comment. May not merge."},
        },
    )
    assert r.status_code == 201, r.text
    cuid = r.json()["cuid"]
    other = {"org_cuid": ORG, "slug": SLUG, "name": "Claims Triage", "custom_fields": {}}
    assert admin.post("/records", json=other).status_code == 201  # so one archive is no mass loss
    server = stack.enter_context(live_atryum(sim_config(sim.url), engine))
    api = stack.enter_context(Api(server.url))

    def sync() -> None:
        run = api.ok(api.http.post("/api/v1/agents/sync", params={"wait": "true"}))
        assert run["status"] == "succeeded", run

    api.ok(api.http.put("/api/v1/settings", json={"org_cuid": ORG, "agent_record_type_slug": SLUG}))
    sync()
    review = next(
        a for a in api.ok(api.http.get("/api/v1/agents"))["items"] if a["vm_cuid"] == cuid
    )
    api.ok(api.http.patch(f"/api/v1/agents/{review['cuid']}", json={"agent_ids": ["rt-rev"]}))
    fallback = api.ok(api.http.post("/api/v1/agents", json={"name": "Default"}), 201)
    api.ok(api.http.put("/api/v1/settings", json={"default_agent_id": fallback["cuid"]}))
    scoped = api.rule("auto_approve", tool_patterns=["Comment"], agent_cuids=[review["cuid"]])
    api.rule("auto_approve", agent_cuids=[fallback["cuid"]])
    api.rule("auto_approve", tool_patterns=["Read"])
    api.ok(api.http.put("/api/v1/policy", json={"provider": "always_approve"}))

    first = api.submit("Comment", agent_id="rt-rev")
    assert (first["status"], first["matched_rule_id"]) == ("approved", scoped["id"])

    assert admin.post(f"/records/{cuid}/archive").status_code < 300
    sync()
    for tool in ("Comment", "Read", "Anything"):
        inv = api.submit(tool, agent_id="rt-rev")
        assert inv["status"] == "denied" and inv["matched_rule_id"] is None, inv
        assert inv["approval"]["reason"] == (
            "agent Code Review was retired: its ValidMind record is archived"
        )
        assert inv["agent_record_id"] == review["cuid"]
    stale = api.ok(api.http.get(f"/api/v1/rules/{scoped['id']}"))
    assert stale["stale_agents"] == [review["cuid"]] and stale["matches_nothing"] is True

    assert admin.post(f"/records/{cuid}/unarchive").status_code < 300
    sync()
    back = api.submit("Comment", agent_id="rt-rev")
    assert (back["status"], back["matched_rule_id"]) == ("approved", scoped["id"])
    assert api.ok(api.http.get(f"/api/v1/rules/{scoped['id']}"))["stale_agents"] == []


class PollingHarness:
    """A harness polling one invocation every 0.2 s, like the hook scripts, riding out
    connection errors while Atryum is down; `answer` fills in once the status is decided."""

    def __init__(self, url: str, inv_id: str) -> None:
        self.url, self.inv_id = url, inv_id
        self.answer: dict[str, Any] = {}
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx2.Client(base_url=self.url, timeout=5) as http:
            while not self.stop.wait(0.2):
                try:
                    body = http.get(f"/api/v1/external/invocations/{self.inv_id}").json()
                except httpx2.HTTPError:
                    self.errors += 1
                    continue
                if body["status"] != "pending_approval":
                    self.answer.update(body)
                    return

    def __enter__(self) -> PollingHarness:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def test_pending_approval_survives_a_restart(db_url: str, tmp_path: Path) -> None:
    """A real `atryum run` process: a call waits for a human, the process is killed (-9) and
    started again on the same database, the human approves, and the harness that kept polling
    through the outage receives `approved`."""
    atryum = AtryumProcess(tmp_path, "gateway", database_url=db_url, sim_url="").start()
    try:
        with Api(atryum.url) as api:
            inv = api.submit("Bash", idempotency_key="before-restart")
        assert inv["status"] == "pending_approval"
        with PollingHarness(atryum.url, inv["invocation_id"]) as harness:
            atryum.kill9()
            wait_until(lambda: harness.errors > 0)  # the harness saw Atryum go away
            atryum.start()
            with Api(atryum.url) as api:
                pending = api.ok(api.http.get("/api/v1/review/invocations"))["items"]
                assert [i["invocation_id"] for i in pending] == [inv["invocation_id"]]
                api.decide(inv["invocation_id"], "approve", reason="after the restart")
            wait_until(lambda: harness.answer, timeout=20)
        assert harness.answer["status"] == "approved"
        assert harness.answer["approval"]["reason"] == "after the restart"
    finally:
        atryum.stop()


def test_two_replicas_share_decisions(
    db_url: str, engine: sa.Engine, live_atryum: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Submit on A, approve on B, the harness polling A sees it. On PostgreSQL, A's live
    stream is pushed B's change through LISTEN/NOTIFY, without polling."""
    postgres = engine.dialect.name == "postgresql"
    monkeypatch.setattr(waiting, "RECHECK_NOTIFIED", 60.0)
    engine_b = make_engine(db_url)
    with (
        live_atryum(make_config(), engine) as a,
        live_atryum(make_config(), engine_b) as b,
        Api(a.url) as api_a,
        Api(b.url) as api_b,
    ):
        inv = api_a.submit("Bash")
        inv_id = inv["invocation_id"]

        def seen_approved(events: list[dict[str, Any]]) -> bool:
            return any(
                e["event"] == "invocation"
                and e["data"]["invocation_id"] == inv_id
                and e["data"]["status"] == "approved"
                for e in events
            )

        hub_a = runtime_for(a.ctx).hub
        # The stream is checked on PostgreSQL only: a reader that stops at once would leave
        # the hub when its connection closes, at a moment that could mask the long-poll's arrival.
        reader = SSEReader(a.url, seen_approved) if postgres else contextlib.nullcontext()
        with reader as stream:
            watching = hub_a.subscriber_count()
            with Poller(api_a, inv_id) as answer:
                wait_until(lambda: hub_a.subscriber_count() > watching)  # A's long-poll waits
                api_b.decide(inv_id, "approve", reason="from replica B")
                # On PostgreSQL the re-read fallback is made longer than the test's patience,
                # so only B's NOTIFY can wake A's long-poll in time.
                wait_until(lambda: answer, timeout=4 if postgres else 10)
            assert answer["status"] == "approved"
            assert answer["approval"]["reason"] == "from replica B"
            if stream is not None:
                wait_until(lambda: seen_approved(stream.events), timeout=10)
    engine_b.dispose()


def test_review_stream_pushes_every_change(engine: sa.Engine, live_atryum: Live) -> None:
    """Each change is pushed as it happens. (The stream sends an invocation's state when it
    reads it, so changes made faster than it reads may arrive as the newest state: the test
    makes each change once the previous one has been seen, as a reviewer's page would.)"""
    with live_atryum(make_config(), engine) as server, Api(server.url) as api:
        ids: list[str] = []
        with SSEReader(
            server.url, lambda events: bool(ids) and "succeeded" in stream.statuses(ids[0])
        ) as stream:

            def pushed(status: str) -> None:
                wait_until(lambda: status in stream.statuses(ids[0]), timeout=15)

            ids.append(api.submit("Bash")["invocation_id"])
            pushed("pending_approval")
            api.decide(ids[0], "approve")
            pushed("approved")
            api.ok(
                api.http.patch(
                    f"/api/v1/external/invocations/{ids[0]}", json={"execution_status": "completed"}
                )
            )
            pushed("succeeded")
        assert stream.statuses(ids[0]) == ["pending_approval", "approved", "succeeded"]
