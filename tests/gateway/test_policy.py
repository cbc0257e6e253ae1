"""Rule matching and ordering, AI evaluation hand-offs and the default policy (pure logic)."""

from __future__ import annotations

import fnmatch
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atryum.gateway import policy
from atryum.gateway.models import Rule

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def mk(order: int, action: str, *, tools=(), servers=(), agents=(), enabled=True) -> Rule:
    return Rule(
        id=f"r{order}",
        action=action,
        server_patterns=list(servers),
        tool_patterns=list(tools),
        agent_cuids=list(agents),
        description="",
        enabled=enabled,
        order=order,
        created_at=NOW,
        updated_at=NOW,
    )


def call(tool: str = "Bash", source: str = "claude-code", agent: str | None = None):
    return policy.Call(source=source, tool=tool, agent_record_id=agent, input={})


@pytest.mark.parametrize(
    ("patterns", "value", "expected"),
    [
        ([], "anything", True),
        (["*"], "anything", True),
        (["mcp__github__*"], "mcp__github__create_issue", True),
        (["mcp__github__*"], "mcp__gitlab__create_issue", False),
        (["Bash"], "Bash", True),
        (["Bash"], "bash", False),
        (["Bash"], "BashTool", False),
        (["Rea?"], "Read", True),
        (["Rea?"], "Reads", False),
        (["[ab]"], "a", False),  # brackets are literal: only * and ? are wildcards
        (["[ab]"], "[ab]", True),
        (["Write", "Edit"], "Edit", True),
    ],
)
def test_patterns(patterns: list[str], value: str, expected: bool) -> None:
    assert policy.pattern_matches(patterns, value) is expected


# Patterns over an alphabet without `[`: fnmatch's character classes are not ours (brackets are
# literal here), so the comparison covers exactly the `*`/`?` semantics both share.
@settings(max_examples=2000, deadline=None)
@given(st.text("ab*?", max_size=12), st.text("ab", max_size=16))
def test_glob_agrees_with_fnmatch(pattern: str, value: str) -> None:
    assert policy.glob_matches(pattern, value) is fnmatch.fnmatchcase(value, pattern)


@settings(max_examples=300, deadline=None)
@given(st.text("a*?.\n", max_size=policy.MAX_PATTERN_LENGTH), st.text("a.\n", max_size=600))
def test_glob_with_any_characters_agrees_with_fnmatch(pattern: str, value: str) -> None:
    assert policy.glob_matches(pattern, value) is fnmatch.fnmatchcase(value, pattern)


def test_a_backtracking_pattern_decides_at_once() -> None:
    """`*a*a*…*c` against a long run of `a`s: a regex of `.*` pieces backtracks for hours (the
    old matcher stalled every hook for seconds on 256 characters); this one is linear in it."""
    rules = [mk(0, "auto_deny", tools=["*a" * 20 + "*c"]), mk(1, "auto_approve")]
    name = "a" * 512
    fastest = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        decision = policy.decide(rules=rules, call=call(name), provider="always_deny")
        fastest = min(fastest, time.perf_counter() - started)
        assert (decision.outcome, decision.rule_id) == ("approve", "r1")
    assert fastest < 0.010
    assert policy.decide(rules=rules, call=call(name + "c"), provider="x").outcome == "deny"


def test_first_matching_rule_decides_in_order() -> None:
    rules = [
        mk(1, "auto_approve", tools=["Bash"]),
        mk(0, "auto_deny", tools=["Ba*"]),
    ]
    decision = policy.decide(rules=rules, call=call("Bash"), provider="always_approve")
    assert (decision.outcome, decision.rule_id) == ("deny", "r0")


def test_disabled_rules_and_other_tools_are_skipped() -> None:
    rules = [
        mk(0, "auto_deny", tools=["Bash"], enabled=False),
        mk(1, "auto_approve", tools=["Bash"]),
    ]
    assert (
        policy.decide(rules=rules, call=call("Bash"), provider="always_deny").outcome == "approve"
    )
    other = policy.decide(rules=rules, call=call("Read"), provider="always_deny")
    assert (other.outcome, other.rule_id, other.by_default_policy) == ("deny", None, True)


def test_agent_scoped_rule_matches_only_its_agents() -> None:
    rules = [mk(0, "auto_deny", agents=["a1"]), mk(1, "auto_approve")]
    assert policy.decide(rules=rules, call=call(agent="a1"), provider="x").outcome == "deny"
    assert policy.decide(rules=rules, call=call(agent="a2"), provider="x").outcome == "approve"
    # an unattributed call is not "one of its agents"
    assert policy.decide(rules=rules, call=call(agent=None), provider="x").outcome == "approve"


def test_server_patterns_match_the_source() -> None:
    rules = [mk(0, "auto_approve", servers=["cursor"])]
    assert policy.decide(
        rules=rules, call=call(source="cursor"), provider="always_deny"
    ).outcome == ("approve")
    assert policy.decide(
        rules=rules, call=call(source="codex"), provider="always_deny"
    ).outcome == ("deny")


@pytest.mark.parametrize(
    ("provider", "outcome"),
    [
        ("manual_approval", "human"),
        ("always_approve", "approve"),
        ("always_deny", "deny"),
        ("something-else", "human"),
    ],
)
def test_default_policy_when_nothing_matches(provider: str, outcome: str) -> None:
    assert policy.decide(rules=[], call=call(), provider=provider).outcome == outcome


def test_human_approval_rule() -> None:
    d = policy.decide(rules=[mk(0, "human_approval")], call=call(), provider="always_approve")
    assert (d.outcome, d.rule_id) == ("human", "r0")


def test_ai_evaluation_next_rule_continues_and_falls_back_to_a_human() -> None:
    def next_rule(rule: Rule, c: policy.Call) -> tuple[policy.Verdict, str]:
        return "next_rule", "not sure"

    rules = [mk(0, "ai_evaluation"), mk(1, "auto_deny", tools=["Bash"])]
    d = policy.decide(
        rules=rules, call=call("Bash"), provider="always_approve", evaluator=next_rule
    )
    assert (d.outcome, d.rule_id) == ("deny", "r1")
    # nothing after it decides: a human, never the permissive default policy
    d = policy.decide(
        rules=rules, call=call("Read"), provider="always_approve", evaluator=next_rule
    )
    assert (d.outcome, d.rule_id) == ("human", "r0")


def test_ai_evaluation_verdicts_and_missing_judge() -> None:
    def approve(rule: Rule, c: policy.Call) -> tuple[policy.Verdict, str]:
        return "approve", "within the charter"

    rules = [mk(0, "ai_evaluation")]
    d = policy.decide(rules=rules, call=call(), provider="always_deny", evaluator=approve)
    assert d.outcome == "approve" and "within the charter" in d.reason
    d = policy.decide(rules=rules, call=call(), provider="always_approve")
    assert d.outcome == "human" and "not configured" in d.reason
