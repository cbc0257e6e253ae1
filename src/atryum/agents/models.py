"""Registry records as the rest of the code sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

SOURCE_VALIDMIND = "validmind"
SOURCE_MANUAL = "manual"

# Fields of a synced agent that ValidMind owns: refreshed by every sync, read-only in the API.
SOURCE_OWNED_FIELDS = frozenset({"name", "description", "charter"})


@dataclass(frozen=True)
class Binding:
    id: str
    agent_id: str
    account: str
    external_agent_id: str
    external_agent_name: str
    created_at: datetime


@dataclass(frozen=True)
class Agent:
    id: str
    source: str
    vm_organization_cuid: str
    vm_organization_name: str
    vm_record_type_slug: str
    vm_cuid: str | None
    name: str
    description: str
    charter: str
    enabled: bool
    tags: list[str]
    source_hash: str | None
    synced_at: datetime | None
    removed_at: datetime | None
    removal_reason: str | None
    source_missing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    agent_ids: list[str] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)

    @property
    def synced(self) -> bool:
        return self.source == SOURCE_VALIDMIND

    @property
    def active(self) -> bool:
        return self.removed_at is None
