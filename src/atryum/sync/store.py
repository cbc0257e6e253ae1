"""SQL for the sync: settings row, the org's synced agents, and the bulk apply of a plan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from atryum.agents.models import SOURCE_VALIDMIND
from atryum.agents.store import chunks
from atryum.db.tables import agent_sync_settings, agents, managed_agent_bindings
from atryum.db.types import UTCDateTime
from atryum.sync.planner import LocalAgent

SETTINGS_ID = 1


def read_settings(conn: sa.Connection, *, lock: bool = False) -> dict[str, Any] | None:
    """The settings row; `lock` holds it (FOR UPDATE on PostgreSQL) until the transaction ends,
    so a sync's apply and a settings change never interleave. SQLite's BEGIN IMMEDIATE already
    serialises every write transaction."""
    q = sa.select(agent_sync_settings).where(agent_sync_settings.c.id == SETTINGS_ID)
    row = conn.execute(q.with_for_update() if lock else q).first()
    return dict(row._mapping) if row else None


def write_settings(conn: sa.Connection, values: dict[str, Any]) -> None:
    exists = conn.execute(
        sa.select(agent_sync_settings.c.id).where(agent_sync_settings.c.id == SETTINGS_ID)
    ).first()
    if exists:
        conn.execute(
            agent_sync_settings.update()
            .where(agent_sync_settings.c.id == SETTINGS_ID)
            .values(**values)
        )
    else:
        conn.execute(agent_sync_settings.insert().values(id=SETTINGS_ID, **values))


def _bound() -> sa.Exists:
    return sa.exists().where(managed_agent_bindings.c.agent_id == agents.c.id)


def load_org_agents(
    conn: sa.Connection, org_cuid: str, default_agent_id: str | None
) -> list[LocalAgent]:
    in_org = sa.and_(agents.c.source == SOURCE_VALIDMIND, agents.c.vm_organization_cuid == org_cuid)
    # Driven from the bindings (a handful), each checked by the agent's key: a join lets
    # SQLite's planner walk the org's agents instead and probe for a binding 100 000 times.
    bound_q = sa.select(managed_agent_bindings.c.agent_id).where(
        sa.exists().where(agents.c.id == managed_agent_bindings.c.agent_id, in_org)
    )
    dependents = set(conn.execute(bound_q).scalars())
    if default_agent_id:
        dependents.add(default_agent_id)
    q = sa.select(
        agents.c.id,
        agents.c.vm_cuid,
        agents.c.name,
        agents.c.source_hash,
        agents.c.removed_at.is_not(None),
        agents.c.source_missing_since.is_not(None),
    ).where(in_org)
    # This runs over every agent of the org: plain tuples straight from the driver's cursor
    # (SQLAlchemy's result rows cost more than the query here).
    compiled = q.compile(dialect=conn.dialect)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        params = compiled.params
        if conn.dialect.paramstyle == "qmark":
            cursor.execute(str(compiled), [params[k] for k in compiled.positiontup or ()])
        else:
            cursor.execute(str(compiled), params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return [
        LocalAgent(i, cuid, name, h, bool(retired), bool(missing), i in dependents)
        for i, cuid, name, h, retired, missing in rows
    ]


def active_synced_outside_scope(
    conn: sa.Connection, org_cuid: str | None, slug: str, default_agent_id: str | None
) -> list[LocalAgent]:
    """Active synced agents that a scope of (org_cuid, slug) no longer covers (all of them when
    `org_cuid` is None)."""
    outside = (
        sa.or_(agents.c.vm_organization_cuid != org_cuid, agents.c.vm_record_type_slug != slug)
        if org_cuid is not None
        else sa.true()
    )
    q = sa.select(
        agents.c.id, agents.c.vm_cuid, agents.c.name, agents.c.source_hash, _bound().label("bound")
    ).where(agents.c.source == SOURCE_VALIDMIND, agents.c.removed_at.is_(None), outside)
    return [
        LocalAgent(
            id=r.id,
            vm_cuid=r.vm_cuid,
            name=r.name,
            source_hash=r.source_hash,
            retired=False,
            missing=False,
            dependent=bool(r.bound) or r.id == default_agent_id,
        )
        for r in conn.execute(q)
    ]


def org_snapshot(conn: sa.Connection, org_cuid: str) -> tuple[int, Any]:
    """(count, last update) of the org's synced agents: if it is the same at apply time as when
    the agents were loaded, nothing but bindings (which the retirement re-checks) changed."""
    q = sa.select(sa.func.count(), sa.func.max(agents.c.updated_at)).where(
        agents.c.source == SOURCE_VALIDMIND, agents.c.vm_organization_cuid == org_cuid
    )
    count, last = conn.execute(q).one()
    return int(count), last


def mark_synced(conn: sa.Connection, agent_ids: Sequence[str], now: datetime) -> None:
    for part in chunks(agent_ids):
        conn.execute(agents.update().where(agents.c.id.in_(part)).values(synced_at=now))


def _keep_confirmation(confirmed_at: datetime | None) -> dict[str, Any]:
    """Rows leaving the org-confirmed set keep the confirmation they had as their own."""
    if confirmed_at is None:
        return {}
    own = agents.c.synced_at
    return {
        "synced_at": sa.case(
            (sa.or_(own.is_(None), own < confirmed_at), sa.literal(confirmed_at, UTCDateTime)),
            else_=own,
        )
    }


def retire(
    conn: sa.Connection,
    agent_ids: Sequence[str],
    reason: str,
    now: datetime,
    confirmed_at: datetime | None = None,
    *,
    default_agent_id: str | None = None,
) -> set[str]:
    """Retire the active agents among `agent_ids` that nothing depends on *now*; returns the ids
    retired. One planned while unbound but bound since (or made the default agent) stays."""
    retired: set[str] = set()
    for part in chunks(agent_ids):
        # Lock the rows first (PostgreSQL): a binding being added to one of them commits before
        # the UPDATE below takes its snapshot, and one added later waits for this transaction.
        conn.execute(sa.select(agents.c.id).where(agents.c.id.in_(part)).with_for_update())
        protected = ~_bound()
        if default_agent_id:
            protected = sa.and_(protected, agents.c.id != default_agent_id)
        result = conn.execute(
            agents.update()
            .where(agents.c.id.in_(part), agents.c.removed_at.is_(None), protected)
            .values(
                removed_at=now,
                removal_reason=reason,
                updated_at=now,
                **_keep_confirmation(confirmed_at),
            )
            .returning(agents.c.id)
        )
        retired.update(result.scalars())
    return retired


def flag_missing(
    conn: sa.Connection,
    agent_ids: Sequence[str],
    now: datetime,
    confirmed_at: datetime | None = None,
) -> None:
    for part in chunks(agent_ids):
        conn.execute(
            agents.update()
            .where(agents.c.id.in_(part), agents.c.source_missing_since.is_(None))
            .values(source_missing_since=now, updated_at=now, **_keep_confirmation(confirmed_at))
        )


def retire_or_keep(
    conn: sa.Connection,
    retires: list[LocalAgent],
    keeps: list[LocalAgent],
    *,
    reason: str,
    now: datetime,
    confirmed_at: datetime | None,
    default_agent_id: str | None,
) -> tuple[list[LocalAgent], list[LocalAgent]]:
    """Retire `retires`, except those something came to depend on since planning (see `retire`),
    and flag those and `keeps` as missing from the source. Returns (retired, kept)."""
    retired_ids = retire(
        conn,
        [a.id for a in retires],
        reason,
        now,
        confirmed_at,
        default_agent_id=default_agent_id,
    )
    retired = [a for a in retires if a.id in retired_ids]
    kept = keeps + [a for a in retires if a.id not in retired_ids]
    flag_missing(conn, [a.id for a in kept], now, confirmed_at)
    return retired, kept


def confirmed_at(conn: sa.Connection, org_cuid: str) -> datetime | None:
    row = read_settings(conn)
    if not row or row.get("confirmed_org_cuid") != org_cuid:
        return None
    value: datetime | None = row.get("confirmed_at")
    return value


def set_confirmed(conn: sa.Connection, org_cuid: str | None, now: datetime | None) -> None:
    conn.execute(
        agent_sync_settings.update()
        .where(agent_sync_settings.c.id == SETTINGS_ID)
        .values(confirmed_org_cuid=org_cuid, confirmed_at=now)
    )
