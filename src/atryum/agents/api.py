"""HTTP routes of the agent registry: /api/v1/agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from atryum.agents import service
from atryum.agents.schemas import (
    AgentBrief,
    AgentCreate,
    AgentList,
    AgentOut,
    AgentPatch,
    AgentSearch,
)
from atryum.agents.store import AgentFilter
from atryum.context import AppContext, get_ctx
from atryum.gateway.deps import Operator
from atryum.limits import Text
from atryum.paging import DEFAULT_LIMIT, Limit, Offset

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])
Ctx = Annotated[AppContext, Depends(get_ctx)]


Search = Annotated[
    Text,
    Query(
        max_length=200,
        description="search name, description, cuid, organization, tags and runtime ids",
    ),
]


@router.get("", response_model=AgentList)
def list_agents(
    ctx: Ctx,
    include_removed: bool = False,
    q: Search = "",
    source: Annotated[Text, Query(description="validmind or manual")] = "",
    state: Annotated[
        Text | None, Query(description="active (default) | kept | disabled | retired | all")
    ] = None,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> AgentList:
    """A page of agents in name order; `include_removed=true` is `state=all`."""
    flt = AgentFilter(
        text=q, source=source, state=state or ("all" if include_removed else "active")
    )
    agents, total = service.page_agents(ctx.engine, flt=flt, offset=offset, limit=limit)
    return AgentList(
        items=[AgentOut.of(a) for a in agents], total=total, offset=offset, limit=limit
    )


@router.get("/search", response_model=AgentSearch)
def search_agents(
    ctx: Ctx,
    q: Search = "",
    include_removed: bool = False,
    offset: Offset = 0,
    limit: Limit = 20,
) -> AgentSearch:
    """Agents for a picker: id, name and state only, in name order (search-as-you-type)."""
    flt = AgentFilter(text=q, state="all" if include_removed else "active")
    rows, total = service.search_agents(ctx.engine, flt=flt, offset=offset, limit=limit)
    return AgentSearch(
        items=[AgentBrief.of(r) for r in rows], total=total, offset=offset, limit=limit
    )


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
