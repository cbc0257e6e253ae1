"""HTTP routes of the agent registry: /api/v1/agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from atryum.agents import service
from atryum.agents.schemas import AgentCreate, AgentList, AgentOut, AgentPatch
from atryum.context import AppContext, get_ctx
from atryum.gateway.deps import Operator

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])
Ctx = Annotated[AppContext, Depends(get_ctx)]


@router.get("", response_model=AgentList)
def list_agents(ctx: Ctx, include_removed: bool = False) -> AgentList:
    agents = service.list_agents(ctx.engine, include_removed=include_removed)
    return AgentList(items=[AgentOut.of(a) for a in agents])


@router.post("", response_model=AgentOut, status_code=status.HTTP_201_CREATED)
def create_agent(body: AgentCreate, ctx: Ctx, operator: Operator) -> AgentOut:
    agent = service.create_manual_agent(
        ctx.engine,
        name=body.name,
        description=body.description,
        charter=body.charter,
        agent_ids=body.agent_ids,
        enabled=body.enabled,
        tags=body.tags,
        bindings=[b.to_input() for b in body.claude_managed_agents],
        actor=operator,
    )
    return AgentOut.of(agent)


@router.get("/{agent_id}", response_model=AgentOut)
def get_agent(agent_id: str, ctx: Ctx) -> AgentOut:
    return AgentOut.of(service.get_agent(ctx.engine, agent_id=agent_id))


@router.patch("/{agent_id}", response_model=AgentOut)
def patch_agent(agent_id: str, body: AgentPatch, ctx: Ctx, operator: Operator) -> AgentOut:
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    for key in ("name", "description", "charter", "agent_ids", "enabled", "tags"):
        if key in changes and changes[key] is None:
            del changes[key]  # an explicit null means "leave as is"
    if "claude_managed_agents" in changes:
        bindings = changes.pop("claude_managed_agents") or []
        changes["bindings"] = [b.to_input() for b in bindings]
    agent = service.update_agent(ctx.engine, agent_id=agent_id, changes=changes, actor=operator)
    return AgentOut.of(agent)


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_agent(agent_id: str, ctx: Ctx, operator: Operator) -> Response:
    service.delete_agent(ctx.engine, agent_id=agent_id, actor=operator)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
