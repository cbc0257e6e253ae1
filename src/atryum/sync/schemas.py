"""Wire shapes of the sync and settings API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atryum.limits import INT32_MAX, Cuid, Text
from atryum.sync.planner import LocalAgent


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allow_removals: bool = Field(default=False, strict=True)


class SettingsPatch(BaseModel):
    """PUT and PATCH both keep omitted fields."""

    model_config = ConfigDict(extra="forbid")
    org_cuid: Cuid | None = None
    org_name: Text | None = None
    agent_record_type_slug: Text | None = None
    charter_field_key: Text | None = Field(default=None, min_length=1)
    default_agent_id: Text | None = None
    interval_seconds: int | None = Field(default=None, ge=5, le=INT32_MAX, strict=True)
    max_removals: int | None = Field(default=None, ge=0, le=INT32_MAX, strict=True)
    max_removal_ratio: float | None = Field(default=None, ge=0, le=1, strict=True)
    allow_removals: bool = Field(
        default=False,
        strict=True,
        description="apply a scope change even when it would retire more agents than the "
        "sync's thresholds allow (otherwise it is held: 409, nothing saved)",
    )

    def changes(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.model_fields_set if k != "allow_removals"}
        # `default_agent_id: null` clears the default agent; other nulls mean "keep".
        return {k: v for k, v in out.items() if v is not None or k == "default_agent_id"}


class AgentRef(BaseModel):
    cuid: str
    vm_cuid: str
    name: str

    @classmethod
    def of(cls, a: LocalAgent) -> AgentRef:
        return cls(cuid=a.id, vm_cuid=a.vm_cuid, name=a.name)


class SettingsOut(BaseModel):
    org_cuid: str
    org_name: str
    agent_record_type_slug: str
    charter_field_key: str
    default_agent_id: str | None
    interval_seconds: int
    max_removals: int
    max_removal_ratio: float
    updated_at: datetime | None
    validmind_configured: bool
    sync_configured: bool


class SettingsChangeOut(SettingsOut):
    sync_run_id: str | None = None
    retired: list[AgentRef] = []
    kept: list[AgentRef] = []


class SettingsPreviewOut(BaseModel):
    settings: SettingsOut
    scope_changed: bool
    retire: list[AgentRef]
    keep: list[AgentRef]
    held_reason: str = Field(
        default="",
        description="why saving it would be held (send allow_removals: true to apply it)",
    )


class ChangeOut(BaseModel):
    action: str
    agent_id: str | None
    vm_cuid: str | None
    name: str
    reason: str


class RunOut(BaseModel):
    id: str
    trigger: str
    requested_by: str = ""
    dry_run: bool = False
    allow_removals: bool = False
    triggers: list[str] | None = None
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    restored: int = 0
    kept_dependent: int = 0
    skipped_invalid: int = 0
    held: int = 0
    changes_total: int = 0
    error: str = ""
    warnings: list[str] = []


class RunDetail(RunOut):
    """One run with its first changes; every change: GET …/runs/{id}/changes (paged)."""

    changes: list[ChangeOut] = []


class RunList(BaseModel):
    items: list[RunOut]
    total: int
    offset: int
    limit: int


class ChangeList(BaseModel):
    items: list[ChangeOut]
    total: int
    offset: int
    limit: int
