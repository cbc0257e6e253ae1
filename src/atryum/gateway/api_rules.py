"""Rules and the default policy: /api/v1/rules, /api/v1/policy, /api/v1/agent/rules."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from atryum.gateway import rules
from atryum.gateway.deps import Caller, Ctx, Operator, Runtime
from atryum.gateway.schemas import (
    AgentRef,
    AgentRulesOut,
    DecisionPreview,
    MoveIn,
    PolicyIn,
    PolicyOut,
    RuleCreate,
    RuleIn,
    RuleList,
    RuleOut,
)

router = APIRouter(tags=["rules"])


def _spec(body: RuleIn) -> rules.RuleSpec:
    return rules.RuleSpec(
        action=body.action,
        server_patterns=body.server_patterns,
        tool_patterns=body.tool_patterns,
        agent_cuids=body.agent_cuids,
        description=body.description,
        enabled=body.enabled,
        atryum_llm_config_id=body.atryum_llm_config_id,
        model_config_cuid=body.model_config_cuid,
        min_confidence=body.min_confidence,
        shadow=body.shadow,
    )


@router.get("/api/v1/rules", response_model=RuleList)
def list_rules(ctx: Ctx) -> RuleList:
    return RuleList(items=[RuleOut.of(v) for v in rules.list_rules(ctx.engine)])


@router.post("/api/v1/rules", response_model=RuleOut, status_code=status.HTTP_201_CREATED)
def create_rule(body: RuleCreate, ctx: Ctx, operator: Operator) -> RuleOut:
    view = rules.create_rule(
        ctx.engine, spec=_spec(body), insert_before=body.insert_before, actor=operator
    )
    return RuleOut.of(view)


@router.get("/api/v1/rules/{rule_id}", response_model=RuleOut)
def get_rule(rule_id: str, ctx: Ctx) -> RuleOut:
    return RuleOut.of(rules.get_rule(ctx.engine, rule_id=rule_id))


@router.put("/api/v1/rules/{rule_id}", response_model=RuleOut)
def replace_rule(rule_id: str, body: RuleIn, ctx: Ctx, operator: Operator) -> RuleOut:
    view = rules.replace_rule(ctx.engine, rule_id=rule_id, spec=_spec(body), actor=operator)
    return RuleOut.of(view)


@router.delete("/api/v1/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: str, ctx: Ctx, operator: Operator) -> Response:
    rules.delete_rule(ctx.engine, rule_id=rule_id, actor=operator)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/api/v1/rules/{rule_id}/move", response_model=RuleOut)
def move_rule(rule_id: str, body: MoveIn, ctx: Ctx, operator: Operator) -> RuleOut:
    view = rules.move_rule(ctx.engine, rule_id=rule_id, direction=body.direction, actor=operator)
    return RuleOut.of(view)


@router.get("/api/v1/policy", response_model=PolicyOut)
def get_policy(ctx: Ctx, rt: Runtime) -> PolicyOut:
    return PolicyOut.of(rules.get_policy(ctx.engine, defaults=rt.defaults))


@router.put("/api/v1/policy", response_model=PolicyOut)
def put_policy(body: PolicyIn, ctx: Ctx, rt: Runtime, operator: Operator) -> PolicyOut:
    pol = rules.update_policy(
        ctx.engine,
        provider=body.provider,
        approval_timeout_seconds=body.approval_timeout_seconds,
        defaults=rt.defaults,
        actor=operator,
    )
    return PolicyOut.of(pol)


@router.get("/api/v1/agent/rules", response_model=AgentRulesOut)
def agent_rules(
    ctx: Ctx,
    rt: Runtime,
    caller: Caller,
    source: str = "",
    tool: str = "",
    agent_id: str | None = None,
) -> AgentRulesOut:
    """Advisory: the rules that would apply to this call and the decision they give now."""
    found = rules.rules_for_caller(
        ctx.engine,
        source=source,
        tool=tool,
        agent_id=caller.agent_id if caller is not None else agent_id,
        issuer=caller.issuer if caller is not None else None,
        defaults=rt.defaults,
    )
    agent = found.resolution.agent
    return AgentRulesOut(
        agent=AgentRef(cuid=agent.id, name=agent.name) if agent else None,
        denied=found.resolution.denied,
        rules=[RuleOut.of(v) for v in found.rules],
        decision=DecisionPreview(
            outcome=found.decision.outcome,
            reason=found.decision.reason,
            rule_id=found.decision.rule_id,
        ),
    )
