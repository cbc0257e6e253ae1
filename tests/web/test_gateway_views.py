"""Rules, agent picker, invocation rows and event histories in words (the gateway pages)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from atryum.gateway.models import AgentState, Event, Invocation, Rule, RuleView
from atryum.web.gateway_views import (
    Paging,
    agent_choices,
    event_rows,
    invocation_rows,
    patterns_text,
    pretty_json,
    rule_names,
    rule_rows,
)
from tests.web.test_views import SYNCED

NOW = datetime(2025, 3, 1, 14, 5, tzinfo=UTC)
RULE = Rule(
    id="r1",
    action="auto_deny",
    server_patterns=[],
    tool_patterns=["Bash", "mcp__github__*"],
    agent_cuids=[],
    description="No shell",
    enabled=True,
    order=0,
    created_at=NOW,
    updated_at=NOW,
)
LIVE = AgentState("a1", "Claims", live=True, enabled=True, removal_reason=None)
RETIRED = AgentState("a2", "Ledger", live=False, enabled=True, removal_reason="archived_in_source")
OFF = AgentState("a3", "Ops", live=True, enabled=False, removal_reason=None)


def test_rules_name_their_agents_with_states_and_flag_stale_ones() -> None:
    everyone = RuleView(replace(RULE, description=""))
    scoped = RuleView(replace(RULE, id="r2", agent_cuids=["a1", "a2", "a3"]), [LIVE, RETIRED, OFF])
    stale = RuleView(replace(RULE, id="r3", agent_cuids=["a2", "gone"]), [RETIRED])
    rows = rule_rows([everyone, scoped, stale])

    assert [r.label for r in rows] == ["#1 (Deny automatically)", "#2 “No shell”", "#3 “No shell”"]
    assert rows[0].agents == [] and rows[0].warnings == []
    assert (rows[0].servers, rows[0].tools) == ("any server", "Bash, mcp__github__*")
    assert [(a.name, a.state) for a in rows[1].agents] == [
        ("Claims", "active"),
        ("Ledger", "retired"),
        ("Ops", "disabled"),
    ]
    assert rows[1].warnings == ["This rule names a retired agent: Ledger"]
    assert rows[2].warnings[:2] == [
        "This rule names a retired agent: Ledger",
        "This rule names an agent that no longer exists: gone",
    ]
    assert rows[2].warnings[2].startswith("Matches nothing — all its agents are gone or retired")
    assert patterns_text(["*"], "any tool") == "any tool"
    assert rule_names(rows)["r2"] == "#2 “No shell”"


def test_the_agent_picker_lists_live_agents_first_and_keeps_retired_ones_removable() -> None:
    named = replace(SYNCED, id="n", name="Named retired", removed_at=NOW)
    found = [  # brief rows of the agent search (live agents), one of them also named
        {"id": a.id, "name": a.name, "removed_at": a.removed_at, "enabled": a.enabled}
        for a in (replace(SYNCED, id="d", name="alpha", enabled=False), SYNCED)
    ]
    choices = agent_choices([named], found, ["n"])
    assert [(c.name, c.state, c.checked, c.selectable) for c in choices] == [
        ("Claims", "active", False, True),
        ("alpha", "disabled", False, True),
        ("Named retired", "retired", True, True),
    ]


def _inv(**fields: object) -> Invocation:
    base = Invocation(
        id="i1",
        source="claude-code",
        tool="Bash",
        input={"command": "ls", "ü": [1]},
        description="",
        request_id=None,
        idempotency_key=None,
        thread_id=None,
        agent_id="jwt-claims",
        agent_record_id="a1",
        agent_name="Claims",
        caller=None,
        client_session_id=None,
        client_name=None,
        client_version=None,
        status="pending_approval",
        matched_rule_id=None,
        result=None,
        error=None,
        submitted_at=NOW,
        updated_at=NOW,
        completed_at=None,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_invocations_show_the_agent_by_name_and_the_rule_in_words() -> None:
    names = {"r1": "#1 “No shell”"}
    rows = invocation_rows(
        [
            _inv(),
            _inv(id="i2", agent_name=None, matched_rule_id="r1", status="denied"),
            _inv(id="i3", agent_name=None, agent_id=None, matched_rule_id="old", status="approved"),
        ],
        names,
    )
    assert [(r.agent, r.rule, r.pending) for r in rows] == [
        ("Claims", "—", True),
        ("jwt-claims", "#1 “No shell”", False),
        ("—", "deleted rule old", False),
    ]
    assert (
        pretty_json({"command": "ls", "ü": [1]}) == '{\n  "command": "ls",\n  "ü": [\n    1\n  ]\n}'
    )


def test_events_say_who_why_and_which_rule() -> None:
    def event(seq: int, status: str, data: dict[str, object], actor: str | None = None) -> Event:
        return Event(f"e{seq}", "i1", seq, "status", None, status, actor, NOW, data)

    rows = event_rows(
        [
            event(1, "received", {"agent_record_id": "a1", "resolved_via": "runtime_id"}),
            event(2, "denied", {"reason": "denied by rule", "rule_id": "r1", "decided_by": "rule"}),
            event(3, "approved", {"reason": "ok"}, actor="operator"),
        ],
        {"r1": "#1 “No shell”"},
    )
    assert [(r.reason, r.rule, r.details) for r in rows] == [
        ("", "", [("agent resolved via", "runtime_id")]),
        ("denied by rule", "#1 “No shell”", [("decided by", "rule")]),
        ("ok", "", []),
    ]


def test_paging_links() -> None:
    assert (Paging(0, 50, 0).first, Paging(0, 50, 0).last) == (0, 0)
    middle = Paging(50, 50, 120)
    assert (middle.first, middle.last, middle.previous, middle.next) == (51, 100, 0, 100)
    assert Paging(100, 50, 120).next is None and Paging(0, 50, 120).previous is None
