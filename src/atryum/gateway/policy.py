"""Rule matching and the decision for one call: ordered rules, then the default policy.

Pure functions: no database, no clock. The service loads the rules and the policy, calls
`decide`, and turns any exception into a request for human approval (never an approval).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from atryum.gateway.models import (
    AI_EVALUATION,
    ALWAYS_APPROVE,
    ALWAYS_DENY,
    AUTO_APPROVE,
    AUTO_DENY,
    HUMAN_APPROVAL,
    Rule,
)

Outcome = Literal["approve", "deny", "human"]
# "escalate": the judge itself asked for a human (the approval shows `ai_escalated`).
Verdict = Literal["approve", "deny", "human", "escalate", "next_rule"]


@dataclass(frozen=True)
class Call:
    """What the rules look at."""

    source: str
    tool: str
    agent_record_id: str | None
    input: dict[str, Any]
    description: str = ""
    charter: str = ""


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    rule_id: str | None
    by_default_policy: bool = False
    escalated: bool = False


# Judges a call against the agent's charter for an `ai_evaluation` rule.
Evaluator = Callable[[Rule, Call], tuple[Verdict, str]]


def no_evaluator(rule: Rule, call: Call) -> tuple[Verdict, str]:
    """Used until an AI judge is configured: the call goes to a human."""
    return "human", "AI evaluation is not configured in this Atryum, so a human must decide"


# Longest rule pattern accepted (rules.py refuses longer ones): with it, a glob match costs at most
# len(pattern) * len(value) character comparisons, whatever the tool name.
MAX_PATTERN_LENGTH = 256


def _fits(segment: str, value: str, at: int) -> bool:
    """`segment` (literal characters and `?`) matches `value` starting at index `at`."""
    if at < 0 or at + len(segment) > len(value):
        return False
    return all(c == "?" or c == value[at + k] for k, c in enumerate(segment))


def _find(segment: str, value: str, start: int, end: int) -> int:
    """The leftmost index >= start where `segment` fits inside value[:end], or -1."""
    if "?" not in segment:
        return value.find(segment, start, end)
    for at in range(start, end - len(segment) + 1):
        if _fits(segment, value, at):
            return at
    return -1


def glob_matches(pattern: str, value: str) -> bool:
    """`*` (any run, including none) and `?` (any one character) against the whole value.

    No backtracking: the pieces between stars are placed left to right at their leftmost fit,
    which is always enough for `*`-only globs, so runs of `*` collapse and the cost is bounded by
    len(pattern) * len(value) (a regex of `.*` pieces can take exponential time instead).
    """
    if "*" not in pattern:
        return len(pattern) == len(value) and _fits(pattern, value, 0)
    first, *middle, last = pattern.split("*")
    end = len(value) - len(last)
    if end < len(first) or not _fits(first, value, 0) or not _fits(last, value, end):
        return False
    pos = len(first)
    for segment in middle:
        at = _find(segment, value, pos, end)
        if at < 0:
            return False
        pos = at + len(segment)
    return True


def pattern_matches(patterns: Sequence[str], value: str) -> bool:
    """Empty list or `*` = any; entries with `*`/`?` are globs; others match exactly."""
    if not patterns:
        return True
    for p in patterns:
        if p == "*" or p == value:
            return True
        if ("*" in p or "?" in p) and glob_matches(p, value):
            return True
    return False


def rule_matches(rule: Rule, call: Call) -> bool:
    """An agent-scoped rule matches only calls resolved to one of its agents.

    A retired agent never reaches the rules (the service denies it first), so a rule whose agents
    are all retired or gone matches nothing; it never widens to all agents.
    """
    if not rule.enabled:
        return False
    if rule.agent_cuids and call.agent_record_id not in rule.agent_cuids:
        return False
    return pattern_matches(rule.server_patterns, call.source) and pattern_matches(
        rule.tool_patterns, call.tool
    )


def rule_label(rule: Rule) -> str:
    return f"rule {rule.description!r}" if rule.description else f"rule {rule.id}"


def decide(
    *,
    rules: Sequence[Rule],
    call: Call,
    provider: str,
    evaluator: Evaluator = no_evaluator,
) -> Decision:
    deferred: list[str] = []
    for rule in sorted(rules, key=lambda r: r.order):
        if not rule_matches(rule, call):
            continue
        label = rule_label(rule)
        if rule.action == AUTO_APPROVE:
            return Decision("approve", f"approved by {label}", rule.id)
        if rule.action == AUTO_DENY:
            return Decision("deny", f"denied by {label}", rule.id)
        if rule.action == HUMAN_APPROVAL:
            return Decision("human", f"{label} requires human approval", rule.id)
        if rule.action == AI_EVALUATION:
            verdict, why = evaluator(rule, call)
            if rule.shadow:  # judged and recorded by the evaluator, never deciding
                continue
            if verdict == "next_rule":
                deferred.append(rule.id)
                continue
            if verdict == "approve":
                return Decision("approve", f"approved by AI evaluation ({label}): {why}", rule.id)
            if verdict == "deny":
                return Decision("deny", f"denied by AI evaluation ({label}): {why}", rule.id)
            return Decision("human", f"{label}: {why}", rule.id, escalated=verdict == "escalate")
        return Decision("human", f"{label} has an unknown action; a human must decide", rule.id)
    if deferred:
        return Decision(
            "human",
            "AI evaluation passed the call on and no later rule decided; a human must decide",
            deferred[-1],
        )
    if provider == ALWAYS_APPROVE:
        return Decision("approve", "no rule matched; approved by the default policy", None, True)
    if provider == ALWAYS_DENY:
        return Decision("deny", "no rule matched; denied by the default policy", None, True)
    return Decision(
        "human", "no rule matched; the default policy asks a human to decide", None, True
    )


def _stop_here(rule: Rule, call: Call) -> tuple[Verdict, str]:
    return "human", "listed"


def effective_action(*, rules: Sequence[Rule], call: Call, provider: str) -> str:
    """The action a call gets by rule or default policy, before any judge or human: the rule
    `decide` stops at (an `ai_evaluation` rule counts as its own action), else the default
    policy's equivalent."""
    decision = decide(rules=rules, call=call, provider=provider, evaluator=_stop_here)
    if decision.by_default_policy:
        return {ALWAYS_APPROVE: AUTO_APPROVE, ALWAYS_DENY: AUTO_DENY}.get(provider, HUMAN_APPROVAL)
    by_id = {r.id: r.action for r in rules}
    return by_id.get(decision.rule_id or "", HUMAN_APPROVAL)
