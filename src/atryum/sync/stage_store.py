"""SQL for the staged pull: the content of the records a run must write, and the plan's
decisions, in temporary tables of the run's own connection, applied with set-based statements.

Measured on 100 000 records with 1 KB charters (SQLite, this 2-core machine): building one
parameter dict per row and letting SQLAlchemy process every value cost 3.7 s of a 7.6 s first
sync, and holding every record in memory 370 MB. Staged rows go to the driver as plain tuples
(COPY on PostgreSQL), and the apply is one `INSERT … SELECT` plus one `UPDATE … FROM` per
action, whatever the size of the organization. Records whose fingerprint matches the registry
are never staged at all (see `atryum.sync.records.Normalizer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from atryum.agents.models import SOURCE_VALIDMIND
from atryum.db.engine import sqlite_file
from atryum.db.tables import agents
from atryum.db.types import UTCDateTime
from atryum.sync.records import Content

_meta = sa.MetaData()
stage = sa.Table(
    "atryum_sync_stage",
    _meta,
    # No key while staging (rows arrive in bulk); `index` builds the lookup once, at apply time.
    sa.Column("cuid", sa.String(128), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("charter", sa.Text, nullable=True),  # NULL: keep the stored charter
    sa.Column("source_hash", sa.String(64), nullable=False),
    prefixes=["TEMPORARY"],
)
plan = sa.Table(
    "atryum_sync_plan",
    _meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("cuid", sa.String(128), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("agent_id", sa.String(36), nullable=True),
    prefixes=["TEMPORARY"],
)
TABLES = (stage, plan)

# A random (version 4) UUID as text, computed by the database for each inserted row.
_UUID_SQLITE = (
    "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || "
    "substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
)
_UUID_POSTGRES = "gen_random_uuid()::text"


def create(conn: sa.Connection) -> None:
    """Fresh, empty staging tables on this connection (a pooled one may hold old ones)."""
    drop(conn)
    for table in TABLES:
        table.create(conn)


def index(conn: sa.Connection) -> None:
    """Index the staged content by cuid (once every page is in) and the plan by action."""
    conn.execute(sa.text(f"CREATE UNIQUE INDEX ix_{stage.name}_cuid ON {stage.name} (cuid)"))
    # The plan drives the apply's joins (it is the small side when little changed).
    conn.execute(sa.text(f"CREATE INDEX ix_{plan.name}_action ON {plan.name} (action, cuid)"))


def drop(conn: sa.Connection) -> None:
    for table in reversed(TABLES):
        table.drop(conn, checkfirst=True)


def discard(conn: sa.Connection) -> None:
    """The staging tables are gone once the run ends. A SQLite file: the connection is closed,
    and its temporary database (the file that holds them) deleted whole; dropping them would
    free their pages one by one (0.5 s after a first sync of 100 000 agents). PostgreSQL, and an
    in-memory SQLite database (which lives in its one connection): dropped."""
    if sqlite_file(conn.engine) is not None:
        conn.invalidate()
        return
    if conn.in_transaction():
        conn.rollback()
    with conn.begin():
        drop(conn)


def _copy_or_insert(conn: sa.Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    names = [c.name for c in table.columns]
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection
        copy = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
        with raw.cursor() as cur, cur.copy(copy) as cp:
            for row in rows:
                cp.write_row(row)
        return
    marks = ", ".join("?" for _ in names)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", rows)


def stage_content(conn: sa.Connection, rows: Sequence[Content]) -> None:
    _copy_or_insert(conn, stage, rows)


def stage_plan(conn: sa.Connection, rows: Sequence[tuple[int, str, str, str | None]]) -> None:
    """The plan's writes: (seq, cuid, action, agent id or None for a create)."""
    _copy_or_insert(conn, plan, rows)


def _planned(action: str) -> sa.Select[Any]:
    return sa.select(stage, plan.c.agent_id, plan.c.seq).join(
        plan, sa.and_(plan.c.cuid == stage.c.cuid, plan.c.action == action)
    )


def insert_creates(
    conn: sa.Connection, *, org_cuid: str, org_name: str, slug: str, now: datetime
) -> int:
    """Insert every planned create from its staged content; returns the rows inserted."""
    new_id = _UUID_POSTGRES if conn.dialect.name == "postgresql" else _UUID_SQLITE
    at = sa.literal(now, UTCDateTime)
    src = _planned("create").subquery()
    select = sa.select(
        sa.literal_column(new_id),
        sa.literal(SOURCE_VALIDMIND),
        sa.literal(org_cuid),
        sa.literal(org_name),
        sa.literal(slug),
        src.c.cuid,
        src.c.name,
        src.c.description,
        sa.func.coalesce(src.c.charter, ""),
        sa.true(),
        sa.literal([], agents.c.tags.type),
        src.c.source_hash,
        at,
        at,
        at,
    ).order_by(src.c.seq)
    cols = [
        agents.c[k]
        for k in (
            "id",
            "source",
            "vm_organization_cuid",
            "vm_organization_name",
            "vm_record_type_slug",
            "vm_cuid",
            "name",
            "description",
            "charter",
            "enabled",
            "tags",
            "source_hash",
            "synced_at",
            "created_at",
            "updated_at",
        )
    ]
    stmt = agents.insert().from_select(cols, select)
    return conn.execute(stmt.execution_options(preserve_rowcount=True)).rowcount


def refresh(
    conn: sa.Connection, action: str, *, org_name: str, slug: str, now: datetime, restore: bool
) -> int:
    """Write the source-owned fields of every planned `action` ("update" or "restore") from its
    staged content; restoring also clears the retirement (same id, same row)."""
    values: dict[str, Any] = {
        "name": stage.c.name,
        "description": stage.c.description,
        "charter": sa.func.coalesce(stage.c.charter, agents.c.charter),
        "vm_organization_name": org_name,
        "vm_record_type_slug": slug,
        "source_hash": stage.c.source_hash,
        "source_missing_since": None,
        "synced_at": now,
        "updated_at": now,
    }
    if restore:
        values.update(removed_at=None, removal_reason=None)
    stmt = (
        agents.update()
        .where(
            agents.c.id == plan.c.agent_id,
            plan.c.action == action,
            stage.c.cuid == plan.c.cuid,
        )
        .values(**values)
    )
    return conn.execute(stmt).rowcount


def created_changes(run_id: str, reason: str) -> sa.Select[Any]:
    """The change rows of the creates just inserted, in plan order (run_store.add_changes_from)."""
    return (
        sa.select(
            sa.literal(run_id),
            sa.literal("created"),
            agents.c.id,
            agents.c.vm_cuid,
            agents.c.name,
            sa.literal(reason),
        )
        .join(plan, sa.and_(plan.c.cuid == agents.c.vm_cuid, plan.c.action == "create"))
        .where(agents.c.source == SOURCE_VALIDMIND)
        .order_by(plan.c.seq)
    )
