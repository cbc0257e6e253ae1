"""SQL of the judge: LLM configs, client sessions and their history, agent context. No policy."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from atryum.db.tables import (
    agent_sync_settings,
    agents,
    approval_rules,
    client_sessions,
    invocations,
    llm_configs,
)
from atryum.judge.models import AgentContext, LlmConfig

# -- LLM configs ------------------------------------------------------------------------------


def _config(row: sa.Row[Any]) -> LlmConfig:
    m = dict(row._mapping)
    m["enabled"] = bool(m["enabled"])
    m["timeout_seconds"] = float(m["timeout_seconds"])
    return LlmConfig(**m)


def list_configs(conn: sa.Connection) -> list[LlmConfig]:
    q = sa.select(llm_configs).order_by(llm_configs.c.name, llm_configs.c.created_at)
    return [_config(r) for r in conn.execute(q)]


def get_config(conn: sa.Connection, config_id: str) -> LlmConfig | None:
    row = conn.execute(sa.select(llm_configs).where(llm_configs.c.id == config_id)).first()
    return _config(row) if row else None


def configs_by_id(conn: sa.Connection, ids: Iterable[str]) -> dict[str, LlmConfig]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    q = sa.select(llm_configs).where(llm_configs.c.id.in_(wanted))
    return {c.id: c for c in (_config(r) for r in conn.execute(q))}


def insert_config(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(llm_configs.insert().values(**values))


def update_config(conn: sa.Connection, config_id: str, values: dict[str, Any]) -> None:
    conn.execute(llm_configs.update().where(llm_configs.c.id == config_id).values(**values))


def delete_config(conn: sa.Connection, config_id: str) -> None:
    conn.execute(llm_configs.delete().where(llm_configs.c.id == config_id))


def rules_using(conn: sa.Connection, config_id: str) -> list[str]:
    q = (
        sa.select(approval_rules.c.id)
        .where(approval_rules.c.atryum_llm_config_id == config_id)
        .order_by(approval_rules.c.position)
    )
    return list(conn.execute(q).scalars())


# -- client sessions --------------------------------------------------------------------------


TOUCH_EVERY = timedelta(minutes=1)

# When this process last saw each session's row fresh, per database: within TOUCH_EVERY of that
# nothing is read or written (the hook path's hottest statement otherwise). A write counts once
# its transaction commits. Bounded: emptied when full.
_fresh: weakref.WeakKeyDictionary[sa.Engine, dict[tuple[str, str], datetime]] = (
    weakref.WeakKeyDictionary()
)
_FRESH_MAX = 10_000


def touch_session(
    conn: sa.Connection, agent_key: str, session_id: str, *, now: datetime, cutoff: datetime
) -> None:
    """Mark the session seen now; one unseen since `cutoff` starts afresh (sliding TTL).

    A session seen within TOUCH_EVERY is left as it is: against a TTL of days a minute's
    precision is plenty, and a write per call would queue every call of a busy session on
    that one row (PostgreSQL row lock, SQLite's write)."""
    fresh = _fresh.setdefault(conn.engine, {})
    key = (agent_key, session_id)
    known = fresh.get(key)
    if known is not None and now - TOUCH_EVERY <= known <= now:
        return
    if len(fresh) >= _FRESH_MAX:
        fresh.clear()
    seen = conn.execute(
        sa.select(client_sessions.c.last_seen_at).where(
            client_sessions.c.agent_key == agent_key,
            client_sessions.c.client_session_id == session_id,
        )
    ).scalar()
    if seen is not None and now - TOUCH_EVERY <= seen <= now:
        fresh[key] = seen
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(client_sessions).values(
        agent_key=agent_key, client_session_id=session_id, started_at=now, last_seen_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[client_sessions.c.agent_key, client_sessions.c.client_session_id],
        set_={
            "last_seen_at": now,
            "started_at": sa.case(
                (client_sessions.c.last_seen_at < cutoff, now),
                else_=client_sessions.c.started_at,
            ),
        },
    )
    conn.execute(stmt)

    def committed(_conn: sa.Connection) -> None:
        fresh[key] = now

    sa.event.listen(conn, "commit", committed, once=True)


def session_history(
    conn: sa.Connection,
    agent_id: str | None,
    caller: str | None,
    session_id: str,
    *,
    cutoff: datetime,
    limit: int,
) -> list[sa.Row[Any]]:
    """The newest `limit` calls of a live session (newest first): source, tool, input, status,
    submitted_at. Empty when the session is unknown or expired. A verified `caller` owns its
    sessions; without one, the presented agent id does."""
    started = conn.execute(
        sa.select(client_sessions.c.started_at).where(
            client_sessions.c.agent_key == (caller or agent_id or ""),
            client_sessions.c.client_session_id == session_id,
            client_sessions.c.last_seen_at >= cutoff,
        )
    ).scalar_one_or_none()
    if started is None or limit <= 0:
        return []
    who = invocations.c.agent_id == agent_id if agent_id else invocations.c.agent_id.is_(None)
    if caller is not None:
        who = sa.and_(who, invocations.c.caller == caller)
    q = (
        sa.select(
            invocations.c.source,
            invocations.c.tool,
            invocations.c.input,
            invocations.c.status,
            invocations.c.submitted_at,
        )
        .where(
            who,
            invocations.c.client_session_id == session_id,
            invocations.c.submitted_at >= started,
        )
        .order_by(invocations.c.submitted_at.desc(), invocations.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(q))


# -- the calling agent ------------------------------------------------------------------------


def agent_context(conn: sa.Connection, agent_id: str) -> AgentContext | None:
    row = conn.execute(
        sa.select(agents.c.vm_cuid, agents.c.vm_organization_cuid, agents.c.tags).where(
            agents.c.id == agent_id
        )
    ).first()
    if row is None:
        return None
    key = conn.execute(
        sa.select(agent_sync_settings.c.charter_field_key).where(agent_sync_settings.c.id == 1)
    ).scalar_one_or_none()
    tags = [str(t) for t in row.tags] if isinstance(row.tags, list) else []
    return AgentContext(row.vm_cuid, row.vm_organization_cuid, tags, key or "charter")
