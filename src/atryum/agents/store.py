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
    names_only: bool = False  # search the name and ValidMind cuid only (pickers: fast)


def _like(folded: str) -> str:
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


#: What db migration 0010 indexed: the agent's searched text on PostgreSQL (the planner takes
#: its trigram index only for this very expression), its FTS5 trigram table on SQLite.
_PG_SEARCH_TEXT: sa.ColumnClause[Any] = sa.literal_column(
    "lower(agents.name || E'\\n' || agents.description || E'\\n' || coalesce(agents.vm_cuid, '') "
    "|| E'\\n' || agents.vm_organization_name || E'\\n' || agents.tags::text)"
)
_search_rows = sa.table("agent_search_rows", sa.column("n"), sa.column("agent_id"))
_search = sa.table("agent_search", sa.column("rowid"), sa.column("agent_search"))
#: Substrings shorter than a trigram are not in the index: those searches scan.
_INDEXED_LENGTH = 3
#: Past this many candidates a walk of the agents in name order is faster than fetching each
#: candidate (a search for "agent" in 100 000 agents named "Agent …").
_MAX_CANDIDATES = 2000


def _sqlite_candidates(
    conn: sa.Connection, folded: str, pattern: str, *, runtime_ids: bool
) -> list[str] | None:
    """The ids of the agents whose indexed text (or a runtime id) contains `folded`, or None
    when there are more than _MAX_CANDIDATES."""
    phrase = '"' + folded.replace('"', '""') + '"'
    q: sa.CompoundSelect[Any] | sa.Select[Any] = (
        sa.select(_search_rows.c.agent_id)
        .select_from(_search.join(_search_rows, _search_rows.c.n == _search.c.rowid))
        .where(_search.c.agent_search.match(phrase))
    )
    if runtime_ids:
        q = sa.union_all(q, _by_runtime_id(pattern))
    ids = list(set(conn.execute(q.limit(_MAX_CANDIDATES + 1)).scalars()))
    return ids if len(ids) <= _MAX_CANDIDATES else None


def _by_runtime_id(pattern: str) -> sa.Select[Any]:
    return sa.select(agent_runtime_ids.c.agent_id).where(
        sa.func.lower(agent_runtime_ids.c.runtime_id).like(pattern, escape="\\")
    )


def _runtime_matches(conn: sa.Connection, pattern: str) -> list[str] | None:
    """The agents with a runtime id matching `pattern` (PostgreSQL reads them first: the
    planner can then combine both indexes or walk the name order, and a scan of every agent
    stays parallel, which a correlated EXISTS does not); None past _MAX_CANDIDATES."""
    ids = list(set(conn.execute(_by_runtime_id(pattern).limit(_MAX_CANDIDATES + 1)).scalars()))
    return ids if len(ids) <= _MAX_CANDIDATES else None


class _Unindexed:
    """`agents.c` for SQLite written as `+agents.<column>`: the same value, no index."""

    def __getattr__(self, name: str) -> sa.ColumnElement[Any]:
        return sa.literal_column(f"+agents.{name}", type_=agents.c[name].type)


def _where(
    conn: sa.Connection, flt: AgentFilter
) -> tuple[sa.ColumnElement[bool] | None, list[sa.ColumnElement[bool]]]:
    """The filter as SQL: the narrowing by the substring index (None if none) and the exact
    filter. A text of three or more characters is first looked up in the index: its matches
    are a superset of the exact match (each searched column is a part of the indexed text),
    which then runs on them only."""
    folded = flt.text.strip().casefold()
    pattern = _like(folded)
    narrowed: sa.ColumnElement[bool] | None = None
    c: Any = agents.c
    postgres = conn.dialect.name == "postgresql"
    full = bool(folded) and not flt.names_only
    runtime_ids = _runtime_matches(conn, pattern) if postgres and full else None
    if len(folded) >= _INDEXED_LENGTH:
        if postgres:  # the indexed text, or a runtime id (past _MAX_CANDIDATES: no narrowing)
            contains = _PG_SEARCH_TEXT.like(pattern, escape="\\")
            if flt.names_only or runtime_ids == []:
                narrowed = contains
            elif runtime_ids is not None:
                narrowed = sa.or_(contains, agents.c.id.in_(runtime_ids))
        else:
            ids = _sqlite_candidates(conn, folded, pattern, runtime_ids=not flt.names_only)
            if ids is not None:
                narrowed = agents.c.id.in_(ids)
                # Unary + keeps SQLite's planner off the other columns' indexes: it fetches the
                # candidates by id instead of walking every agent in an index.
                c = _Unindexed()
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
    if not folded:
        return narrowed, where
    c = agents.c

    def has(col: Any) -> sa.ColumnElement[bool]:
        return sa.func.lower(col).like(pattern, escape="\\")

    # name_key is lower(name), and the column the name indexes hold.
    name = c.name_key.like(pattern, escape="\\")
    if flt.names_only:
        where.append(sa.or_(name, has(sa.func.coalesce(c.vm_cuid, ""))))
        return narrowed, where
    matches = [
        name,
        has(c.description),
        has(sa.func.coalesce(c.vm_cuid, "")),
        has(c.vm_organization_name),
        has(sa.cast(c.tags, sa.Text)),
    ]
    if runtime_ids is None:
        matches.append(
            sa.exists().where(
                agent_runtime_ids.c.agent_id == c.id, has(agent_runtime_ids.c.runtime_id)
            )
        )
    elif runtime_ids:
        matches.append(c.id.in_(runtime_ids))
    where.append(sa.or_(*matches))
    return narrowed, where


def list_agents(conn: sa.Connection, *, include_removed: bool = False) -> list[Agent]:
    """Every agent (retired ones too if asked), in name order."""
    _, where = _where(conn, AgentFilter(state="all" if include_removed else "active"))
    q = _agent_select().where(*where).order_by(*_NAME_ORDER)
    return _hydrate(conn, conn.execute(q).all())


_NAME_ORDER = (agents.c.name_key, agents.c.id)


def _page_ids(where: Sequence[sa.ColumnElement[bool]], offset: int, limit: int) -> sa.Select[Any]:
    """One page's ids. The rows are read for those ids only: a deep page's offset walks the
    name index, not the agents' rows and their computed columns."""
    return sa.select(agents.c.id).where(*where).order_by(*_NAME_ORDER).offset(offset).limit(limit)


def _count(conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]]) -> int:
    q = sa.select(sa.func.count()).select_from(agents).where(*where)
    return int(conn.execute(q).scalar_one())


def _selected(conn: sa.Connection, flt: AgentFilter) -> tuple[list[sa.ColumnElement[bool]], int]:
    """The filter as SQL, and how many agents it selects. A PostgreSQL search narrowed by the
    trigram index is counted up to _MAX_CANDIDATES + 1 first: past that, rechecking each
    candidate's row (charter and all) costs more than the filter on every agent without the
    index, which counts a picker's matches from its name index alone (0014)."""
    narrowed, exact = _where(conn, flt)
    if narrowed is None:
        return exact, _count(conn, exact)
    where = [narrowed, *exact]
    if conn.dialect.name != "postgresql":
        return where, _count(conn, where)
    first = sa.select(agents.c.id).where(*where).limit(_MAX_CANDIDATES + 1).subquery()
    found = int(conn.execute(sa.select(sa.func.count()).select_from(first)).scalar_one())
    if found <= _MAX_CANDIDATES:
        return where, found
    return exact, _count(conn, exact)


def page_agents(
    conn: sa.Connection, flt: AgentFilter, *, offset: int, limit: int
) -> tuple[list[Agent], int]:
    """A page of the agents `flt` selects, in name order, and how many it selects."""
    where, total = _selected(conn, flt)
    q = _agent_select().where(agents.c.id.in_(_page_ids(where, offset, limit)))
    return _hydrate(conn, conn.execute(q.order_by(*_NAME_ORDER)).all()), total


def search_agents(
    conn: sa.Connection, flt: AgentFilter, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Brief rows (no charter, no runtime ids) for pickers, in name order, and how many."""
    where, total = _selected(conn, flt)
    c = agents.c
    q = (
        sa.select(c.id, c.name, c.vm_cuid, c.source, c.enabled, c.removed_at)
        .where(c.id.in_(_page_ids(where, offset, limit)))
        .order_by(*_NAME_ORDER)
    )
    return [dict(r._mapping) for r in conn.execute(q)], total


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
