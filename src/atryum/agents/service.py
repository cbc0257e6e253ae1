"""Registry rules: manual agents are the operator's; synced source fields are ValidMind's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from atryum import audit
from atryum.agents import store
from atryum.agents.models import SOURCE_MANUAL, SOURCE_OWNED_FIELDS, SOURCE_VALIDMIND, Agent
from atryum.db.types import utcnow
from atryum.errors import Conflict, InvalidInput, NotFound
from atryum.identity.principal import SYSTEM, Actor

# What an agent's audit record keeps: what an operator can change, and where it came from.
_AUDITED = ("source", "vm_cuid", "name", "description", "charter", "enabled", "tags", "agent_ids")


@dataclass(frozen=True)
class BindingInput:
    account: str
    external_agent_id: str
    external_agent_name: str
    id: str | None = None


def list_agents(engine: sa.Engine, *, include_removed: bool = False) -> list[Agent]:
    """Every agent (internal callers and tests; the API and UI page)."""
    with engine.begin() as conn:
        return store.list_agents(conn, include_removed=include_removed)


def page_agents(
    engine: sa.Engine, *, flt: store.AgentFilter, offset: int, limit: int
) -> tuple[list[Agent], int]:
    """A page of the agents `flt` selects, in name order, and how many it selects."""
    if flt.state not in store.STATES:
        raise InvalidInput(f"state must be one of {', '.join(store.STATES)}")
    if flt.source not in ("", SOURCE_MANUAL, SOURCE_VALIDMIND):
        raise InvalidInput(f"source must be {SOURCE_VALIDMIND} or {SOURCE_MANUAL}")
    with engine.begin() as conn:
        return store.page_agents(conn, flt, offset=offset, limit=limit)


def search_agents(
    engine: sa.Engine, *, flt: store.AgentFilter, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Brief matches for pickers (id, name, state), in name order, and how many match."""
    with engine.begin() as conn:
        return store.search_agents(conn, flt, offset=offset, limit=limit)


def get_agent(engine: sa.Engine, *, agent_id: str) -> Agent:
    with engine.begin() as conn:
        return _require(conn, agent_id)


def create_manual_agent(
    engine: sa.Engine,
    *,
    name: str,
    description: str = "",
    charter: str = "",
    agent_ids: Sequence[str] = (),
    enabled: bool = True,
    tags: Sequence[str] = (),
    bindings: Sequence[BindingInput] = (),
    actor: Actor = SYSTEM,
) -> Agent:
    name = name.strip()
    if not name:
        raise InvalidInput("name must not be empty")
    now = utcnow()
    agent_id = store.new_id()
    with engine.begin() as conn:
        store.insert_agent(
            conn,
            {
                "id": agent_id,
                "source": SOURCE_MANUAL,
                "vm_cuid": None,
                "name": name,
                "description": description,
                "charter": charter,
                "enabled": enabled,
                "tags": _clean_list(tags, "tags"),
                "created_at": now,
                "updated_at": now,
            },
        )
        _set_runtime_ids(conn, agent_id, agent_ids)
        _set_bindings(conn, agent_id, bindings)
        agent = _require(conn, agent_id)
        _record(conn, actor, agent_id, "create", None, agent)
        return agent


def _snapshot(agent: Agent) -> dict[str, Any]:
    data = asdict(agent)
    return {
        **{k: data[k] for k in _AUDITED},
        "bindings": [
            {"account": b["account"], "external_agent_id": b["external_agent_id"]}
            for b in data["bindings"]
        ],
    }


def _record(
    conn: sa.Connection,
    actor: Actor,
    agent_id: str,
    action: str,
    before: Agent | None,
    after: Agent | None,
) -> None:
    audit.record_change(
        conn,
        actor=actor,
        entity="agent",
        entity_id=agent_id,
        action=action,
        before=_snapshot(before) if before else None,
        after=_snapshot(after) if after else None,
    )


def update_agent(
    engine: sa.Engine, *, agent_id: str, changes: dict[str, Any], actor: Actor = SYSTEM
) -> Agent:
    """Partial update: only the keys present in `changes` are touched."""
    with engine.begin() as conn:
        if "bindings" in changes:
            # Serialises with a sync retiring this agent: see atryum.sync.store.retire.
            store.lock_agent(conn, agent_id)
        agent = _require(conn, agent_id)
        owned = sorted(
            k for k in SOURCE_OWNED_FIELDS & changes.keys() if changes[k] != getattr(agent, k)
        )
        if agent.synced and owned:
            raise Conflict(
                f"{', '.join(owned)} of agent {agent.name!r} come from ValidMind and are read-only "
                "here; edit the inventory record in ValidMind and sync"
            )
        values: dict[str, Any] = {}
        if "name" in changes and not agent.synced:
            if not str(changes["name"]).strip():
                raise InvalidInput("name must not be empty")
            values["name"] = str(changes["name"]).strip()
        for key in ("description", "charter"):
            if key in changes and not agent.synced:
                values[key] = changes[key]
        if "enabled" in changes:
            values["enabled"] = bool(changes["enabled"])
        if "tags" in changes:
            values["tags"] = _clean_list(changes["tags"], "tags")
        values["updated_at"] = utcnow()
        store.update_agent(conn, agent_id, values)
        if "agent_ids" in changes:
            _set_runtime_ids(conn, agent_id, changes["agent_ids"])
        if "bindings" in changes:
            _set_bindings(conn, agent_id, changes["bindings"])
        after = _require(conn, agent_id)
        _record(conn, actor, agent_id, "update", agent, after)
        return after


def delete_agent(engine: sa.Engine, *, agent_id: str, actor: Actor = SYSTEM) -> None:
    with engine.begin() as conn:
        agent = _require(conn, agent_id)
        if agent.synced and agent.active:
            raise Conflict(
                f"agent {agent.name!r} is managed by ValidMind; archive or delete its inventory "
                "record in ValidMind, sync, and then purge the retired agent"
            )
        store.delete_agent(conn, agent_id)
        _record(conn, actor, agent_id, "purge" if agent.synced else "delete", agent, None)


def _require(conn: sa.Connection, agent_id: str) -> Agent:
    agent = store.get_agent(conn, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    return agent


def _clean_list(values: Sequence[str], what: str) -> list[str]:
    cleaned: list[str] = []
    for v in values:
        v = str(v).strip()
        if not v:
            raise InvalidInput(f"{what} must not contain empty values")
        if v not in cleaned:
            cleaned.append(v)
    return cleaned


def _set_runtime_ids(conn: sa.Connection, agent_id: str, runtime_ids: Sequence[str]) -> None:
    ids = _clean_list(runtime_ids, "agent_ids")
    taken = {
        rid: owner for rid, owner in store.runtime_id_owners(conn, ids).items() if owner != agent_id
    }
    if taken:
        rid, owner = next(iter(sorted(taken.items())))
        raise Conflict(f"runtime id {rid!r} already belongs to agent {owner}")
    try:
        with conn.begin_nested():
            store.replace_runtime_ids(conn, agent_id, ids)
    except sa.exc.IntegrityError as exc:
        raise Conflict("a runtime id was claimed by another agent at the same time") from exc


def _set_bindings(conn: sa.Connection, agent_id: str, bindings: Sequence[BindingInput]) -> None:
    keys = [(b.account or "default", b.external_agent_id) for b in bindings]
    if len(set(keys)) != len(keys):
        raise InvalidInput("claude_managed_agents lists the same account/claude_agent_id twice")
    if any(not external_id.strip() for _, external_id in keys):
        raise InvalidInput("claude_agent_id must not be empty")
    taken = {k: v for k, v in store.binding_owners(conn, keys).items() if v != agent_id}
    if taken:
        (account, external_id), owner = next(iter(sorted(taken.items())))
        raise Conflict(
            f"managed agent {external_id!r} (account {account!r}) is already bound to agent {owner}"
        )
    try:
        with conn.begin_nested():
            store.replace_bindings(
                conn,
                agent_id,
                [
                    {
                        "id": b.id or "",
                        "account": b.account or "default",
                        "external_agent_id": b.external_agent_id,
                        "external_agent_name": b.external_agent_name,
                    }
                    for b in bindings
                ],
                utcnow(),
            )
    except sa.exc.IntegrityError as exc:
        raise Conflict("a managed agent was bound to another agent at the same time") from exc
