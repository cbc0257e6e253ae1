"""Gateway records as the rest of the code sees them, and the invocation status machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Invocation statuses (spec §1).
RECEIVED = "received"
PENDING = "pending_approval"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"
EXECUTING = "executing"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

# Statuses in which the harness keeps polling.
OPEN_STATUSES = frozenset({RECEIVED, PENDING, EXECUTING})
# Outcomes reported by the executor; once recorded they never change.
OUTCOMES = frozenset({SUCCEEDED, FAILED, CANCELLED})
# Statuses in which the tool may run or has run: only reachable through an approval.
AFTER_APPROVAL = frozenset({APPROVED, EXECUTING, SUCCEEDED, FAILED})

# The only status changes there are. Anything else is refused (compare-and-set on the old one).
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({RECEIVED}),
    RECEIVED: frozenset({APPROVED, DENIED, PENDING}),
    PENDING: frozenset({APPROVED, DENIED, EXPIRED, CANCELLED}),
    APPROVED: frozenset({EXECUTING, SUCCEEDED, FAILED, CANCELLED}),
    EXECUTING: frozenset({SUCCEEDED, FAILED, CANCELLED}),
}

# Approval statuses.
A_PENDING = "pending"
A_AI_ESCALATED = "ai_escalated"  # pending: the charter judge asked for a human
A_AUTO_APPROVED = "auto_approved"
A_AUTO_DENIED = "auto_denied"
A_APPROVED = "approved"
A_DENIED = "denied"
A_EXPIRED = "expired"
A_CANCELLED = "cancelled"

# Rule actions and default-policy providers (spec §4).
AUTO_APPROVE = "auto_approve"
AUTO_DENY = "auto_deny"
HUMAN_APPROVAL = "human_approval"
AI_EVALUATION = "ai_evaluation"
RULE_ACTIONS = (AUTO_APPROVE, AUTO_DENY, HUMAN_APPROVAL, AI_EVALUATION)

MANUAL_APPROVAL = "manual_approval"
ALWAYS_APPROVE = "always_approve"
ALWAYS_DENY = "always_deny"
POLICY_PROVIDERS = (MANUAL_APPROVAL, ALWAYS_APPROVE, ALWAYS_DENY)


def can_change(old: str | None, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


@dataclass(frozen=True)
class Approval:
    status: str
    reason: str
    actor_id: str | None
    requested_at: datetime
    expires_at: datetime | None
    decision_at: datetime | None


@dataclass(frozen=True)
class Invocation:
    id: str
    source: str
    tool: str
    input: dict[str, Any]
    description: str
    request_id: str | None
    idempotency_key: str | None
    thread_id: str | None
    agent_id: str | None
    agent_record_id: str | None
    agent_name: str | None
    caller: str | None
    client_session_id: str | None
    client_name: str | None
    client_version: str | None
    status: str
    matched_rule_id: str | None
    result: Any
    error: Any
    submitted_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    approval: Approval | None = None


@dataclass(frozen=True)
class Event:
    id: str
    invocation_id: str
    seq: int
    type: str
    from_status: str | None
    status: str
    actor: str | None
    created_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    id: str
    action: str
    server_patterns: list[str]
    tool_patterns: list[str]
    agent_cuids: list[str]
    description: str
    enabled: bool
    order: int
    created_at: datetime
    updated_at: datetime
    # `ai_evaluation` only: the judge (an LLM config or a ValidMind model config), the least
    # confidence an approval needs, and whether the rule only records its verdict (shadow).
    atryum_llm_config_id: str | None = None
    model_config_cuid: str | None = None
    min_confidence: float = 0.0
    shadow: bool = False


@dataclass(frozen=True)
class Policy:
    provider: str
    approval_timeout_seconds: int
    updated_at: datetime | None


@dataclass(frozen=True)
class AgentInfo:
    """The registry agent a call resolved to: just what the gateway decides with."""

    id: str
    name: str
    enabled: bool
    retired: bool
    removal_reason: str | None
    charter: str


@dataclass(frozen=True)
class AgentState:
    """What rules need to know about an agent a rule names."""

    id: str
    name: str
    live: bool  # exists and is not retired
    enabled: bool
    removal_reason: str | None


@dataclass(frozen=True)
class RuleView:
    """A rule with its agents' current states (the API flags stale agents) and, for an
    `ai_evaluation` rule, why its judge cannot answer (disabled or deleted config)."""

    rule: Rule
    agents: list[AgentState] = field(default_factory=list)
    judge_problem: str | None = None

    @property
    def stale_agents(self) -> list[str]:
        known = {a.id: a for a in self.agents}
        return [c for c in self.rule.agent_cuids if c not in known or not known[c].live]

    @property
    def matches_nothing(self) -> bool:
        return bool(self.rule.agent_cuids) and len(self.stale_agents) == len(self.rule.agent_cuids)
