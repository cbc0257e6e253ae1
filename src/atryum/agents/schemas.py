"""Wire shapes of the agents API (field names as in the original Atryum)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from atryum.agents.models import Agent
from atryum.agents.service import BindingInput
from atryum.limits import Text

# A runtime id (JWT client id, harness agent id), as long as its column.
RuntimeId = Annotated[Text, Field(max_length=256)]


class ManagedAgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Text | None = Field(default=None, max_length=36)
    account: Text = Field(default="default", max_length=128)
    claude_agent_id: Text = Field(min_length=1, max_length=256)
    claude_agent_name: Text = Field(default="", max_length=512)

    def to_input(self) -> BindingInput:
        return BindingInput(
            id=self.id,
            account=self.account or "default",
            external_agent_id=self.claude_agent_id,
            external_agent_name=self.claude_agent_name,
        )


class ManagedAgentOut(BaseModel):
    id: str
    account: str
    claude_agent_id: str
    claude_agent_name: str


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=512)
    description: Text = ""
    charter: Text = ""
    agent_ids: list[RuntimeId] = []
    enabled: bool = Field(default=True, strict=True)
    tags: list[str] = []
    claude_managed_agents: list[ManagedAgentIn] = []


class AgentPatch(BaseModel):
    """Every field optional; only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")
    name: Text | None = Field(default=None, min_length=1, max_length=512)
    description: Text | None = None
    charter: Text | None = None
    agent_ids: list[RuntimeId] | None = None
    enabled: bool | None = Field(default=None, strict=True)
    tags: list[str] | None = None
    claude_managed_agents: list[ManagedAgentIn] | None = None


class AgentOut(BaseModel):
    cuid: str
    source: str
    vm_cuid: str | None
    org_cuid: str
    org_name: str
    record_type_slug: str
    name: str
    description: str
    charter: str
    agent_ids: list[str]
    enabled: bool
    tags: list[str]
    synced: bool
    synced_at: datetime | None
    removed_at: datetime | None
    removal_reason: str | None
    source_missing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    claude_managed_agents: list[ManagedAgentOut]

    @classmethod
    def of(cls, a: Agent) -> AgentOut:
        return cls(
            cuid=a.id,
            source=a.source,
            vm_cuid=a.vm_cuid,
            org_cuid=a.vm_organization_cuid,
            org_name=a.vm_organization_name,
            record_type_slug=a.vm_record_type_slug,
            name=a.name,
            description=a.description,
            charter=a.charter,
            agent_ids=a.agent_ids,
            enabled=a.enabled,
            tags=a.tags,
            synced=a.synced,
            synced_at=a.synced_at,
            removed_at=a.removed_at,
            removal_reason=a.removal_reason,
            source_missing_since=a.source_missing_since,
            created_at=a.created_at,
            updated_at=a.updated_at,
            claude_managed_agents=[
                ManagedAgentOut(
                    id=b.id,
                    account=b.account,
                    claude_agent_id=b.external_agent_id,
                    claude_agent_name=b.external_agent_name,
                )
                for b in a.bindings
            ],
        )


class AgentList(BaseModel):
    items: list[AgentOut]
    total: int
    offset: int
    limit: int


class AgentBrief(BaseModel):
    """An agent as a picker shows it."""

    cuid: str
    name: str
    vm_cuid: str | None
    source: str
    state: str  # active | disabled | retired

    @classmethod
    def of(cls, row: dict[str, Any]) -> AgentBrief:
        state = "retired" if row["removed_at"] else "active" if row["enabled"] else "disabled"
        return cls(
            cuid=row["id"],
            name=row["name"],
            vm_cuid=row["vm_cuid"],
            source=row["source"],
            state=state,
        )


class AgentSearch(BaseModel):
    items: list[AgentBrief]
    total: int
    offset: int
    limit: int
