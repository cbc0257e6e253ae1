"""Wire shapes of the gateway API (field names as in the original Atryum's hook contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from atryum.body_limits import displayable
from atryum.gateway.models import AgentState, Approval, Event, Invocation, Policy, RuleView
from atryum.gateway.rules import RuleSpec
from atryum.gateway.service import CallRequest
from atryum.limits import INT32_MAX, Text

Opt256 = Text | None


class InvocationIn(BaseModel):
    """What a harness's pre-tool hook posts. Unknown fields are ignored (older hook scripts)."""

    model_config = ConfigDict(extra="ignore")
    source: Text = Field(min_length=1, max_length=256)
    tool: Text = Field(min_length=1, max_length=512)
    input: dict[str, Any] = {}
    description: Text = Field(default="", max_length=100_000)
    request_id: Opt256 = Field(default=None, max_length=256)
    idempotency_key: Opt256 = Field(default=None, max_length=256)
    thread_id: Opt256 = Field(default=None, max_length=256)
    client_session_id: Opt256 = Field(default=None, max_length=256)
    client_name: Opt256 = Field(default=None, max_length=256)
    client_version: Opt256 = Field(default=None, max_length=128)
    agent_id: Opt256 = Field(default=None, max_length=256)
    wait_seconds: int | None = Field(
        default=None,
        ge=1,
        le=INT32_MAX,
        strict=True,
        description="how long the harness waits for a decision; the call expires then",
    )

    def to_request(self, **fallbacks: str | None) -> CallRequest:
        """The call; `fallbacks` (e.g. from headers or the query) fill fields the body left out."""
        values = self.model_dump()
        for key, value in fallbacks.items():
            values[key] = values[key] or value or None
        return CallRequest(**values)


class OutcomeIn(BaseModel):
    """The executor's report. `result` and `error` are any JSON value (the Go original's hooks
    send the tool's response object as `error`); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    execution_status: Literal["running", "completed", "failed", "cancelled"]
    result: Any = None
    error: Any = None
    message: Text | None = None


class ApprovalOut(BaseModel):
    status: str
    reason: str
    actor_id: str | None
    requested_at: datetime
    expires_at: datetime | None
    decision_at: datetime | None

    @classmethod
    def of(cls, a: Approval | None) -> ApprovalOut | None:
        if a is None:
            return None
        return cls(
            status=a.status,
            reason=a.reason,
            actor_id=a.actor_id,
            requested_at=a.requested_at,
            expires_at=a.expires_at,
            decision_at=a.decision_at,
        )


class InvocationOut(BaseModel):
    invocation_id: str
    status: str
    approval: ApprovalOut | None
    matched_rule_id: str | None
    agent_id: str | None
    agent_record_id: str | None
    agent_name: str | None
    tool_name: str
    server_name: str
    source: str
    tool: str
    input: dict[str, Any]
    description: str
    request_id: str | None
    idempotency_key: str | None
    thread_id: str | None
    client_session_id: str | None
    client_name: str | None
    client_version: str | None
    result: Any
    error: Any
    submitted_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, i: Invocation) -> Self:
        return cls(
            invocation_id=i.id,
            status=i.status,
            approval=ApprovalOut.of(i.approval),
            matched_rule_id=i.matched_rule_id,
            agent_id=i.agent_id,
            agent_record_id=i.agent_record_id,
            agent_name=i.agent_name,
            tool_name=i.tool,
            server_name=i.source,
            source=i.source,
            tool=i.tool,
            input=displayable(i.input),
            description=i.description,
            request_id=i.request_id,
            idempotency_key=i.idempotency_key,
            thread_id=i.thread_id,
            client_session_id=i.client_session_id,
            client_name=i.client_name,
            client_version=i.client_version,
            result=displayable(i.result),
            error=i.error,
            submitted_at=i.submitted_at,
            updated_at=i.updated_at,
            completed_at=i.completed_at,
        )


class InvocationPage(BaseModel):
    items: list[InvocationOut]
    total: int
    offset: int
    limit: int


class EventOut(BaseModel):
    id: str
    invocation_id: str
    seq: int
    type: str
    from_status: str | None
    status: str
    actor: str | None
    created_at: datetime
    data: dict[str, Any]

    @classmethod
    def of(cls, e: Event) -> EventOut:
        return cls(**e.__dict__)


class EventList(BaseModel):
    items: list[EventOut]


# -- rules ------------------------------------------------------------------------------------

Action = Literal["auto_approve", "auto_deny", "human_approval", "ai_evaluation"]


class _JudgeRefs(BaseModel):
    atryum_llm_config_id: Text | None = Field(
        default=None, max_length=64, description="ai_evaluation: the local LLM config to ask"
    )
    model_config_cuid: Text | None = Field(
        default=None, max_length=128, description="ai_evaluation: the ValidMind model config"
    )


class RuleIn(_JudgeRefs):
    model_config = ConfigDict(extra="forbid")
    action: Action
    server_patterns: list[str] = []
    tool_patterns: list[str] = []
    agent_cuids: list[Text] = []
    description: Text = Field(default="", max_length=10_000)
    enabled: bool | None = Field(
        default=None, strict=True, description="absent: true on create, kept on PUT"
    )
    min_confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="ai_evaluation: an approval below this confidence goes to a human "
        "(absent: 0 on create, kept on PUT)",
    )
    shadow: bool | None = Field(
        default=None,
        strict=True,
        description="ai_evaluation: the judge runs and is recorded, but the rule never decides "
        "(absent: false on create, kept on PUT)",
    )


class RuleCreate(RuleIn):
    insert_before: Text | None = Field(
        default=None, description='a rule id to insert before, or "" for the top; absent = last'
    )


class RuleDraft(_JudgeRefs):
    """Go's `create_rule` on approve/deny. Patterns and agents left out default to this call's
    server, tool and agent."""

    model_config = ConfigDict(extra="forbid")
    action: Action
    server_patterns: list[str] | None = None
    tool_patterns: list[str] | None = None
    agent_cuids: list[Text] | None = None
    description: Text = Field(default="", max_length=10_000)
    enabled: bool = True

    def spec_for(self, inv: Invocation) -> RuleSpec:
        return RuleSpec(
            action=self.action,
            server_patterns=[inv.source] if self.server_patterns is None else self.server_patterns,
            tool_patterns=[inv.tool] if self.tool_patterns is None else self.tool_patterns,
            agent_cuids=(
                ([inv.agent_record_id] if inv.agent_record_id else [])
                if self.agent_cuids is None
                else self.agent_cuids
            ),
            description=self.description,
            enabled=self.enabled,
            atryum_llm_config_id=self.atryum_llm_config_id,
            model_config_cuid=self.model_config_cuid,
        )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(default="", max_length=10_000)
    message: Text = Field(default="", max_length=10_000, description="the Go name of `reason`")
    create_rule: RuleDraft | None = Field(
        default=None,
        description="a rule created in the same transaction, before the rule that matched",
    )
    actor_id: Text | None = Field(
        default=None, description="accepted and ignored: the actor is the operator calling"
    )

    @property
    def why(self) -> str:
        return self.reason or self.message


class DecisionOut(InvocationOut):
    ok: Literal[True] = True


class RuleAgentOut(BaseModel):
    cuid: str
    name: str
    state: Literal["active", "disabled", "retired"]

    @classmethod
    def of(cls, a: AgentState) -> RuleAgentOut:
        state: Literal["active", "disabled", "retired"] = (
            "retired" if not a.live else "disabled" if not a.enabled else "active"
        )
        return cls(cuid=a.id, name=a.name, state=state)


class RuleOut(BaseModel):
    id: str
    action: str
    server_patterns: list[str]
    tool_patterns: list[str]
    agent_cuids: list[str]
    agents: list[RuleAgentOut]
    stale_agents: list[str]
    matches_nothing: bool
    description: str
    enabled: bool
    order: int
    atryum_llm_config_id: str | None
    model_config_cuid: str | None
    created_at: datetime
    updated_at: datetime
    min_confidence: float
    shadow: bool
    judge_problem: str | None = Field(
        description="why this ai_evaluation rule's judge cannot answer (calls go to a human)"
    )

    @classmethod
    def of(cls, v: RuleView) -> RuleOut:
        r = v.rule
        return cls(
            id=r.id,
            action=r.action,
            server_patterns=r.server_patterns,
            tool_patterns=r.tool_patterns,
            agent_cuids=r.agent_cuids,
            agents=[RuleAgentOut.of(a) for a in v.agents],
            stale_agents=v.stale_agents,
            matches_nothing=v.matches_nothing,
            description=r.description,
            enabled=r.enabled,
            order=r.order,
            atryum_llm_config_id=r.atryum_llm_config_id,
            model_config_cuid=r.model_config_cuid,
            created_at=r.created_at,
            updated_at=r.updated_at,
            min_confidence=r.min_confidence,
            shadow=r.shadow,
            judge_problem=v.judge_problem,
        )


class RuleList(BaseModel):
    items: list[RuleOut]


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    direction: Literal["up", "down"]


class PolicyOut(BaseModel):
    provider: str
    approval_timeout_seconds: int
    updated_at: datetime | None

    @classmethod
    def of(cls, p: Policy) -> PolicyOut:
        return cls(
            provider=p.provider,
            approval_timeout_seconds=p.approval_timeout_seconds,
            updated_at=p.updated_at,
        )


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Literal["manual_approval", "always_approve", "always_deny"] | None = None
    approval_timeout_seconds: int | None = Field(default=None, ge=1, le=INT32_MAX, strict=True)


class AgentRef(BaseModel):
    cuid: str
    name: str


class DecisionPreview(BaseModel):
    outcome: Literal["approve", "deny", "human"]
    reason: str
    rule_id: str | None


class AgentRulesOut(BaseModel):
    """Advisory: what would apply to this caller's call right now."""

    agent: AgentRef | None
    denied: str | None
    rules: list[RuleOut]
    decision: DecisionPreview
