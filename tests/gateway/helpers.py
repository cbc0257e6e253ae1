"""Small builders shared by the gateway tests."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from atryum.agents import service as agents
from atryum.agents.models import Agent
from atryum.config import SyncConfig
from atryum.db.types import utcnow
from atryum.gateway import rules
from atryum.gateway.models import Rule
from atryum.gateway.service import CallRequest
from atryum.gateway.settings import GatewayDefaults
from atryum.sync import settings as sync_settings
from atryum.sync import store as sync_store

DEFAULTS = GatewayDefaults()


def agent(engine: sa.Engine, name: str, *runtime_ids: str, enabled: bool = True) -> Agent:
    return agents.create_manual_agent(
        engine, name=name, agent_ids=list(runtime_ids), enabled=enabled
    )


def retire(engine: sa.Engine, agent_id: str, reason: str = "archived_in_source") -> None:
    with engine.begin() as conn:
        sync_store.retire(conn, [agent_id], reason, utcnow())


def set_default_agent(engine: sa.Engine, agent_id: str | None) -> None:
    sync_settings.update_settings(
        engine, changes={"default_agent_id": agent_id}, defaults=SyncConfig()
    )


def rule(
    engine: sa.Engine,
    action: str,
    *,
    tools: list[str] | None = None,
    servers: list[str] | None = None,
    agents_: list[str] | None = None,
    description: str = "",
    insert_before: str | None = None,
    enabled: bool = True,
) -> Rule:
    spec = rules.RuleSpec(
        action=action,
        server_patterns=servers or [],
        tool_patterns=tools or [],
        agent_cuids=agents_ or [],
        description=description,
        enabled=enabled,
    )
    return rules.create_rule(engine, spec=spec, insert_before=insert_before).rule


def call(tool: str = "Bash", *, source: str = "claude-code", **extra: Any) -> CallRequest:
    return CallRequest(source=source, tool=tool, input=extra.pop("input", {"cmd": "ls"}), **extra)
