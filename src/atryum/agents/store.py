"""SQL for agents, their runtime ids and managed-agent bindings. No policy here."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from atryum.agents.models import SOURCE_VALIDMIND, Agent, Binding
from atryum.db.tables import (
    agent_runtime_ids,
    agent_sync_settings,
    agents,
    managed_agent_bindings,
)

# Parameters per statement stay well below SQLite's and PostgreSQL's limits.
CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def new_id() -> str:
    return str(uuid.uuid4())


def _agent_select() -> sa.Select[Any]:
    confirmed = (
        sa.select(agent_sync_settings.c.confirmed_at)
        .where(agent_sync_settings.c.confirmed_org_cuid == agents.c.vm_organization_cuid)
        .scalar_subquery()
        .label("org_confirmed_at")
    )
    return sa.select(agents, confirmed)


def _synced_at(m: Any) -> Any:
    """Last confirmation: the row's own, or the org's last complete pull for active agents."""
    confirmed, own = m["org_confirmed_at"], m["synced_at"]
    in_confirmed_set = (
        m["source"] == SOURCE_VALIDMIND
        and m["removed_at"] is None
        and m["source_missing_since"] is None
    )
    if in_confirmed_set and confirmed is not None and (own is None or confirmed > own):
        return confirmed
    return own


def _agent(row: sa.Row[Any], runtime: list[str], binds: list[Binding]) -> Agent:
    m = row._mapping
    return Agent(
        id=m["id"],
        source=m["source"],
        vm_organization_cuid=m["vm_organization_cuid"],
        vm_organization_name=m["vm_organization_name"],
        vm_record_type_slug=m["vm_record_type_slug"],
        vm_cuid=m["vm_cuid"],
        name=m["name"],
        description=m["description"],
        charter=m["charter"],
        enabled=bool(m["enabled"]),
        tags=list(m["tags"] or []),
        source_hash=m["source_hash"],
        synced_at=_synced_at(m),
        removed_at=m["removed_at"],
        removal_reason=m["removal_reason"],
        source_missing_since=m["source_missing_since"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        agent_ids=runtime,
        bindings=binds,
    )


def _hydrate(conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[Agent]:
    ids = [r.id for r in rows]
    runtime: dict[str, list[str]] = defaultdict(list)
    binds: dict[str, list[Binding]] = defaultdict(list)
    for part in chunks(ids):
        q = (
            sa.select(agent_runtime_ids.c.agent_id, agent_runtime_ids.c.runtime_id)
            .where(agent_runtime_ids.c.agent_id.in_(part))
            .order_by(agent_runtime_ids.c.agent_id, agent_runtime_ids.c.position)
        )
        for agent_id, runtime_id in conn.execute(q):
            runtime[agent_id].append(runtime_id)
        bq = (
            sa.select(managed_agent_bindings)
            .where(managed_agent_bindings.c.agent_id.in_(part))
            .order_by(managed_agent_bindings.c.created_at, managed_agent_bindings.c.id)
        )
        for b in conn.execute(bq):
            binds[b.agent_id].append(Binding(**b._mapping))
    return [_agent(r, runtime[r.id], binds[r.id]) for r in rows]


#: Agent list states: which agents each one shows.
STATES = ("active", "kept", "disabled", "retired", "all")


@dataclass(frozen=True)
class AgentFilter:
    """What an agent list shows: `text` is searched (case-insensitively) in the name,
    description, ValidMind cuid, organization name, tags and runtime ids."""

    text: str = ""
    source: str = ""  # "" (any), "validmind" or "manual"
    state: str = "active"  # one of STATES; "active" hides retired agents


def _like(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(flt: AgentFilter) -> list[sa.ColumnElement[bool]]:
    c = agents.c
    where: list[sa.ColumnElement[bool]] = []
    if flt.source:
        where.append(c.source == flt.source)
    if flt.state == "retired":
        where.append(c.removed_at.is_not(None))
    elif flt.state != "all":
        where.append(c.removed_at.is_(None))
    if flt.state == "kept":
        where.append(c.source_missing_since.is_not(None))
    if flt.state == "disabled":
        where.append(c.enabled.is_(False))
    text = flt.text.strip()
    if text:
        pattern = _like(text)

        def has(col: Any) -> sa.ColumnElement[bool]:
            return sa.func.lower(col).like(pattern, escape="\\")

        runtime = sa.exists().where(
            agent_runtime_ids.c.agent_id == c.id, has(agent_runtime_ids.c.runtime_id)
        )
        where.append(
            sa.or_(
                has(c.name),
                has(c.description),
                has(sa.func.coalesce(c.vm_cuid, "")),
                has(c.vm_organization_name),
                has(sa.cast(c.tags, sa.Text)),
                runtime,
            )
        )
    return where


def list_agents(
    conn: sa.Connection,
    *,
    include_removed: bool = False,
    flt: AgentFilter | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Agent]:
    flt = flt or AgentFilter(state="all" if include_removed else "active")
    q = (
        _agent_select()
        .where(*_where(flt))
        .order_by(sa.func.lower(agents.c.name), agents.c.id)
        .offset(offset)
        .limit(limit)
    )
    return _hydrate(conn, conn.execute(q).all())


def count_agents(conn: sa.Connection, flt: AgentFilter) -> int:
    q = sa.select(sa.func.count()).select_from(agents).where(*_where(flt))
    return int(conn.execute(q).scalar_one())


def search_agents(
    conn: sa.Connection, flt: AgentFilter, *, offset: int, limit: int
) -> list[dict[str, Any]]:
    """Brief rows (no charter, no runtime ids) for pickers, in name order."""
    c = agents.c
    q = (
        sa.select(c.id, c.name, c.vm_cuid, c.source, c.enabled, c.removed_at)
        .where(*_where(flt))
        .order_by(sa.func.lower(c.name), c.id)
        .offset(offset)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def get_agent(conn: sa.Connection, agent_id: str) -> Agent | None:
    rows = conn.execute(_agent_select().where(agents.c.id == agent_id)).all()
    return _hydrate(conn, rows)[0] if rows else None


def lock_agent(conn: sa.Connection, agent_id: str) -> None:
    """Hold the agent's row until the transaction ends (PostgreSQL; SQLite writers are serial)."""
    conn.execute(sa.select(agents.c.id).where(agents.c.id == agent_id).with_for_update())


def insert_agent(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(agents.insert().values(**values))


def update_agent(conn: sa.Connection, agent_id: str, values: dict[str, Any]) -> None:
    conn.execute(agents.update().where(agents.c.id == agent_id).values(**values))


def delete_agent(conn: sa.Connection, agent_id: str) -> None:
    conn.execute(agents.delete().where(agents.c.id == agent_id))


def runtime_id_owners(conn: sa.Connection, runtime_ids: Sequence[str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for part in chunks(runtime_ids):
        q = sa.select(agent_runtime_ids.c.runtime_id, agent_runtime_ids.c.agent_id).where(
            agent_runtime_ids.c.runtime_id.in_(part)
        )
        owners.update({rid: aid for rid, aid in conn.execute(q)})
    return owners


def replace_runtime_ids(conn: sa.Connection, agent_id: str, runtime_ids: Sequence[str]) -> None:
    conn.execute(agent_runtime_ids.delete().where(agent_runtime_ids.c.agent_id == agent_id))
    if runtime_ids:
        conn.execute(
            agent_runtime_ids.insert(),
            [
                {"runtime_id": rid, "agent_id": agent_id, "position": i}
                for i, rid in enumerate(runtime_ids)
            ],
        )


def binding_owners(
    conn: sa.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    owners: dict[tuple[str, str], str] = {}
    for account, external_id in keys:
        q = sa.select(managed_agent_bindings.c.agent_id).where(
            managed_agent_bindings.c.account == account,
            managed_agent_bindings.c.external_agent_id == external_id,
        )
        owner = conn.execute(q).scalar_one_or_none()
        if owner is not None:
            owners[(account, external_id)] = owner
    return owners


def replace_bindings(
    conn: sa.Connection, agent_id: str, bindings: Sequence[dict[str, str]], now: datetime
) -> None:
    conn.execute(
        managed_agent_bindings.delete().where(managed_agent_bindings.c.agent_id == agent_id)
    )
    if bindings:
        conn.execute(
            managed_agent_bindings.insert(),
            [
                {
                    "id": b.get("id") or new_id(),
                    "agent_id": agent_id,
                    "account": b["account"],
                    "external_agent_id": b["external_agent_id"],
                    "external_agent_name": b["external_agent_name"],
                    "created_at": now,
                }
                for b in bindings
            ],
        )


def resolve_runtime_id(conn: sa.Connection, runtime_id: str) -> Agent | None:
    """The agent owning a runtime id, active or retired (the caller decides what retired means)."""
    q = sa.select(agent_runtime_ids.c.agent_id).where(agent_runtime_ids.c.runtime_id == runtime_id)
    agent_id = conn.execute(q).scalar_one_or_none()
    return get_agent(conn, agent_id) if agent_id else None


def count_agents_by_state(conn: sa.Connection) -> dict[str, int]:
    state = sa.case(
        (agents.c.removed_at.is_not(None), "retired"),
        (agents.c.source_missing_since.is_not(None), "kept_dependent"),
        (agents.c.source == SOURCE_VALIDMIND, "active_synced"),
        else_="active_manual",
    ).label("state")
    q = sa.select(state, sa.func.count()).group_by(state)
    counts = {"active_synced": 0, "active_manual": 0, "kept_dependent": 0, "retired": 0}
    counts.update({s: n for s, n in conn.execute(q)})
    return counts
