"""What the gateway pages show: invocations, their events and rules, in operators' words."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from atryum.agents.models import Agent
from atryum.body_limits import displayable
from atryum.gateway.models import (
    PENDING,
    AgentState,
    Event,
    Invocation,
    RuleView,
)

#: Invocation status filter: value → label ("" = every status).
INVOCATION_STATUSES = {
    "": "Any status",
    "pending_approval": "Pending approval",
    "received": "Received",
    "approved": "Approved",
    "denied": "Denied",
    "expired": "Expired",
    "executing": "Executing",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "cancelled": "Cancelled",
}

ACTIONS = {
    "auto_approve": "Approve automatically",
    "auto_deny": "Deny automatically",
    "human_approval": "Ask a human",
    "ai_evaluation": "AI evaluation",
}

POLICIES = {
    "manual_approval": "Ask a human (manual approval)",
    "always_approve": "Approve",
    "always_deny": "Deny",
}

#: Who made a decision, as recorded in an event's `decided_by`.
DECIDED_BY = {
    "agent_check": "agent check",
    "rule": "rule",
    "default_policy": "default policy",
    "error": "rules failed to evaluate",
}


def pretty_json(value: Any) -> str:
    """JSON as operators read it: indented, non-ASCII kept, never raising."""
    return json.dumps(displayable(value), indent=2, ensure_ascii=False, default=str)


# -- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleAgent:
    id: str
    name: str
    state: str  # active | disabled | retired | gone


@dataclass(frozen=True)
class RuleRow:
    view: RuleView
    position: int  # 1-based, as shown
    agents: list[RuleAgent]
    warnings: list[str]

    @property
    def rule(self) -> Any:
        return self.view.rule

    @property
    def label(self) -> str:
        """How a rule is named on the pages: `#2 “Deny deletes”`."""
        desc = self.rule.description
        return f"#{self.position} “{desc}”" if desc else f"#{self.position} ({self.action_label})"

    @property
    def action_label(self) -> str:
        return ACTIONS.get(self.rule.action, self.rule.action)

    @property
    def servers(self) -> str:
        return patterns_text(self.rule.server_patterns, "any server")

    @property
    def tools(self) -> str:
        return patterns_text(self.rule.tool_patterns, "any tool")


def patterns_text(patterns: Sequence[str], anything: str) -> str:
    if not patterns or "*" in patterns:
        return anything
    return ", ".join(patterns)


def agent_state(agent: AgentState) -> str:
    if not agent.live:
        return "retired"
    return "active" if agent.enabled else "disabled"


def rule_rows(views: Sequence[RuleView]) -> list[RuleRow]:
    """Rules in evaluation order with their agents' states and stale-agent warnings."""
    return [rule_row(v, i + 1) for i, v in enumerate(views)]


def rule_row(view: RuleView, position: int) -> RuleRow:
    known = {a.id: a for a in view.agents}
    agents = [
        RuleAgent(c, known[c].name, agent_state(known[c]))
        if c in known
        else RuleAgent(c, f"unknown agent {c}", "gone")
        for c in view.rule.agent_cuids
    ]
    warnings: list[str] = []
    for a in agents:
        if a.state == "retired":
            warnings.append(f"This rule names a retired agent: {a.name}")
        elif a.state == "gone":
            warnings.append(f"This rule names an agent that no longer exists: {a.id}")
    if view.judge_problem:
        warnings.append(f"The judge of this AI evaluation rule cannot answer: {view.judge_problem}")
    if view.matches_nothing:
        warnings.append(
            "Matches nothing — all its agents are gone or retired. It never widens to all "
            "agents: edit it or delete it."
        )
    return RuleRow(view=view, position=position, agents=agents, warnings=warnings)


@dataclass(frozen=True)
class AgentChoice:
    id: str
    name: str
    state: str  # active | disabled | retired
    checked: bool

    @property
    def selectable(self) -> bool:
        """A retired agent can be removed from a rule but not added to one."""
        return self.state != "retired" or self.checked


_STATE_ORDER = {"active": 0, "disabled": 1, "retired": 2}


def agent_choices(
    selected: Iterable[Agent], found: Iterable[dict[str, Any]], selected_ids: Sequence[str]
) -> list[AgentChoice]:
    """The agent picker: the agents a rule names (whatever their state: a retired one can only
    be taken off) and a first page of live agents (`found`: brief rows of the agent search),
    live agents first, each with its state, sorted by name."""
    chosen = set(selected_ids)
    out = {
        a.id: AgentChoice(a.id, a.name, agent_state_name(a.removed_at, a.enabled), True)
        for a in selected
        if a.id in chosen
    }
    for row in found:
        state = agent_state_name(row["removed_at"], row["enabled"])
        out.setdefault(row["id"], AgentChoice(row["id"], row["name"], state, False))
    return sorted(out.values(), key=lambda c: (_STATE_ORDER[c.state], c.name.casefold(), c.id))


def agent_state_name(removed_at: object, enabled: bool) -> str:
    return "retired" if removed_at is not None else "active" if enabled else "disabled"


# -- invocations ------------------------------------------------------------------------------


def rule_names(rows: Sequence[RuleRow]) -> dict[str, str]:
    return {r.rule.id: r.label for r in rows}


@dataclass(frozen=True)
class InvocationRow:
    inv: Invocation
    rule: str  # the matched rule in words

    @property
    def agent(self) -> str:
        return self.inv.agent_name or self.inv.agent_id or "—"

    @property
    def pending(self) -> bool:
        return self.inv.status == PENDING


def rule_name(rule_id: str, names: dict[str, str]) -> str:
    return names.get(rule_id, f"deleted rule {rule_id}")


def invocation_rows(items: Sequence[Invocation], names: dict[str, str]) -> list[InvocationRow]:
    return [
        InvocationRow(i, rule_name(i.matched_rule_id, names) if i.matched_rule_id else "—")
        for i in items
    ]


@dataclass(frozen=True)
class EventRow:
    event: Event
    reason: str
    rule: str
    details: list[tuple[str, str]]


_EVENT_KEYS = {
    "decided_by": "decided by",
    "resolved_via": "agent resolved via",
    "message": "message",
    "error": "error",
}


def event_rows(events: Sequence[Event], names: dict[str, str]) -> list[EventRow]:
    """Each status change with why it happened and which rule decided it."""
    out = []
    for e in events:
        data = e.data or {}
        rule_id = data.get("rule_id")
        rule = rule_name(rule_id, names) if rule_id else ""
        details = []
        for key, label in _EVENT_KEYS.items():
            value = data.get(key)
            if value:
                text = DECIDED_BY.get(value, value) if key == "decided_by" else str(value)
                details.append((label, text))
        out.append(EventRow(e, str(data.get("reason") or ""), rule, details))
    return out


@dataclass(frozen=True)
class JudgeRow:
    """One `rule_evaluated` event: what the charter judge said about one rule."""

    rule: str
    judge: str  # in words: "LLM judge-model-1", "ValidMind mc-sim-default", "no judge"
    verdict: str  # the judge's verdict, or "no answer"
    confidence: str
    outcome: str
    reason: str
    latency: str
    tokens: str
    cached: bool
    shadow: bool
    error: str | None


_JUDGES = {"llm": "LLM", "validmind": "ValidMind"}


def judge_rows(events: Sequence[Event], names: dict[str, str]) -> list[JudgeRow]:
    out = []
    for e in events:
        if e.type != "rule_evaluated":
            continue
        d = e.data or {}
        kind = _JUDGES.get(str(d.get("judge")), "no judge")
        model = d.get("model") or d.get("config") or ""
        tokens = d.get("tokens") or {}
        tin, tout = tokens.get("input"), tokens.get("output")
        out.append(
            JudgeRow(
                rule=rule_name(str(d.get("rule_id")), names),
                judge=f"{kind} {model}".strip(),
                verdict=str(d.get("verdict") or "no answer").replace("_", " "),
                confidence="—" if d.get("confidence") is None else f"{d['confidence']:.2f}",
                outcome=str(d.get("outcome") or "").replace("_", " "),
                reason=str(d.get("reason") or ""),
                latency="—" if d.get("latency_ms") is None else f"{d['latency_ms']} ms",
                tokens="—" if tin is None and tout is None else f"{tin or 0} in / {tout or 0} out",
                cached=bool(d.get("cached")),
                shadow=bool(d.get("shadow")),
                error=d.get("error"),
            )
        )
    return out


@dataclass(frozen=True)
class Paging:
    offset: int
    limit: int
    total: int

    @property
    def first(self) -> int:
        return self.offset + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.offset + self.limit, self.total)

    @property
    def previous(self) -> int | None:
        return max(self.offset - self.limit, 0) if self.offset > 0 else None

    @property
    def next(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None
