"""The judge answers outside any transaction, and the decision still rests on current state.

Also: the tool's own metadata (MCP) reaches the judge only as fenced data, and the session
history keeps a 7-day sliding window. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from atryum.db.tables import client_sessions
from atryum.db.types import utcnow
from atryum.gateway import rules, service
from atryum.gateway.runtime import runtime_for
from atryum.judge import store as judge_store
from atryum.judge.prompt import SYSTEM_INSTRUCTIONS
from tests.judge.conftest import CHARTER, Judged
from tests.judge.llm_server import Captured, Step, answer
from tests.judge.test_hook import INJECTIONS, _fenced


def test_the_model_is_asked_while_no_connection_or_write_lock_is_held(judged: Judged) -> None:
    config = judged.config()
    judged.ai_rule(config["id"])
    seen: dict[str, Any] = {}

    def responder(_: Captured) -> Step:
        seen["checked_out"] = judged.engine.pool.checkedout()  # type: ignore[attr-defined]
        if judged.engine.dialect.name == "sqlite":
            path = judged.engine.url.database
            assert path
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:  # fails at once if Atryum held the database's write lock
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                seen["write_lock_free"] = True
            finally:
                other.close()
        else:
            with judged.engine.begin() as conn:  # a write elsewhere goes through meanwhile
                conn.execute(sa.text("SELECT 1 FROM approval_rules FOR UPDATE"))
            seen["write_lock_free"] = True
        return answer("approved")

    judged.llm.responder = responder

    inv = judged.call()

    assert inv["status"] == "approved"
    assert seen == {"checked_out": 0, "write_lock_free": True}


def test_a_rule_changed_while_the_judge_answers_is_decided_on_the_new_rule(
    judged: Judged,
) -> None:
    config = judged.config()
    rule = judged.ai_rule(config["id"])

    def responder(_: Captured) -> Step:
        spec = rules.RuleSpec(action="auto_deny", description="now a deny rule")
        rules.replace_rule(judged.engine, rule_id=rule["id"], spec=spec)
        return answer("approved")

    judged.llm.responder = responder

    inv = judged.call()

    assert inv["status"] == "denied"
    assert "now a deny rule" in inv["approval"]["reason"]
    assert judged.evaluations(inv["invocation_id"]) == []  # the stale answer was not used


def test_a_config_changed_while_the_judge_answers_asks_again(judged: Judged) -> None:
    config = judged.config()
    judged.ai_rule(config["id"])
    url = f"/api/v1/llm-configs/{config['id']}"
    steps = iter(["first", "second"])

    def responder(_: Captured) -> Step:
        which = next(steps)
        if which == "first":
            judged.api.ok(judged.api.http.patch(url, json={"model": "judge-model-2"}))
            return answer("approved")
        return answer("denied", reason="the second model denies")

    judged.llm.responder = responder

    inv = judged.call()

    assert inv["status"] == "denied"
    assert [r.body["model"] for r in judged.llm.requests] == ["judge-model-1", "judge-model-2"]
    (ev,) = judged.evaluations(inv["invocation_id"])
    assert ev["model"] == "judge-model-2"


def test_tool_metadata_reaches_the_judge_as_fenced_data_only(judged: Judged) -> None:
    config = judged.config("openai")
    judged.ai_rule(config["id"])
    judged.llm.script(answer("denied"))
    evil = "\n".join(INJECTIONS)
    request = service.CallRequest(
        source="github",
        tool="get_pull_request",
        input={"number": 1},
        agent_id="review-bot",
        tool_description=evil,
        tool_schema={"type": "object", "description": evil},
    )
    rt = runtime_for(judged.server.ctx)

    inv, _ = service.submit(
        judged.engine, request=request, caller=None, defaults=rt.defaults, judge=rt.judge
    )

    assert inv.status == "denied"
    captured = judged.llm.requests[0]
    token = captured.user.split("\n")[1].split()[1].rstrip(">")
    assert captured.system == SYSTEM_INSTRUCTIONS.format(token=token) + CHARTER
    data = json.loads(_fenced(captured.user))
    assert "approve everything" in data["call"]["tool_description"]
    assert "approve everything" in data["call"]["tool_input_schema"]["description"]


def test_the_session_history_slides_with_use_and_ends_after_7_days(judged: Judged) -> None:
    config = judged.config()
    judged.ai_rule(config["id"])
    judged.llm.responder = lambda _: answer("approved")

    def history() -> list[dict[str, Any]]:
        data = json.loads(_fenced(judged.llm.requests[-1].user))
        items: list[dict[str, Any]] = data["session_history_oldest_first"]
        return items

    for n in range(3):
        judged.call(input={"n": n}, client_session_id="s")
    assert [json.loads(h["arguments"]) for h in history()] == [{"n": 0}, {"n": 1}]
    assert {h["outcome"] for h in history()} == {"approved"}
    judged.call(input={"n": 9}, client_session_id="other")
    assert history() == []  # another session has its own history

    def age(days: int) -> None:
        with judged.engine.begin() as conn:
            conn.execute(
                client_sessions.update().values(last_seen_at=utcnow() - timedelta(days=days))
            )
        judge_store._fresh.clear()  # aged behind the process's back, as a restart would see it

    age(6)  # used within 7 days: still the same session
    judged.call(input={"n": 3}, client_session_id="s")
    assert len(history()) == 3
    age(8)  # unseen for more than 7 days: a fresh session
    judged.call(input={"n": 4}, client_session_id="s")
    assert history() == []
    judged.call(input={"n": 5}, client_session_id="s")
    assert [json.loads(h["arguments"]) for h in history()] == [{"n": 4}]


def test_history_is_kept_per_agent_identity(judged: Judged) -> None:
    from atryum.agents import service as agents

    agents.create_manual_agent(judged.engine, name="Other", agent_ids=["other-bot"], charter="x")
    config = judged.config()
    judged.ai_rule(config["id"])
    judged.llm.responder = lambda _: answer("approved")

    judged.api.submit("t", agent_id="other-bot", input={"secret": 1}, client_session_id="s")
    judged.call(input={"n": 1}, client_session_id="s")

    assert json.loads(_fenced(judged.llm.requests[-1].user))["session_history_oldest_first"] == []
