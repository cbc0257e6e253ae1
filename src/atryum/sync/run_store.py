"""SQL for the sync run history: runs, and each run's per-agent changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from atryum.db.tables import agent_sync_run_changes, agent_sync_runs

CHANGE_FIELDS = ("action", "agent_id", "vm_cuid", "name", "reason")


def insert_run(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(agent_sync_runs.insert().values(**values))


def update_run(conn: sa.Connection, run_id: str, values: dict[str, Any]) -> None:
    conn.execute(agent_sync_runs.update().where(agent_sync_runs.c.id == run_id).values(**values))


def get_run(conn: sa.Connection, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(agent_sync_runs).where(agent_sync_runs.c.id == run_id)).first()
    return dict(row._mapping) if row else None


def list_runs(conn: sa.Connection, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    q = (
        sa.select(agent_sync_runs)
        .order_by(agent_sync_runs.c.started_at.desc(), agent_sync_runs.c.id)
        .offset(offset)
        .limit(limit)
    )
    total = conn.execute(sa.select(sa.func.count()).select_from(agent_sync_runs)).scalar_one()
    return [dict(r._mapping) for r in conn.execute(q)], int(total)


def add_changes(conn: sa.Connection, run_id: str, changes: Sequence[dict[str, Any]]) -> None:
    """Append changes to a run, in order."""
    rows = [{"run_id": run_id, **{k: c.get(k) for k in CHANGE_FIELDS}} for c in changes]
    for start in range(0, len(rows), 2000):
        conn.execute(agent_sync_run_changes.insert(), rows[start : start + 2000])


def add_changes_from(conn: sa.Connection, select: sa.Select[Any]) -> None:
    """Append the changes a query yields (columns run_id + CHANGE_FIELDS), in one statement."""
    cols = [agent_sync_run_changes.c.run_id, *(agent_sync_run_changes.c[k] for k in CHANGE_FIELDS)]
    conn.execute(agent_sync_run_changes.insert().from_select(cols, select))


def count_changes(conn: sa.Connection, run_id: str) -> dict[str, int]:
    """Changes of a run by action."""
    c = agent_sync_run_changes.c
    q = sa.select(c.action, sa.func.count()).where(c.run_id == run_id).group_by(c.action)
    return {action: int(n) for action, n in conn.execute(q)}


def list_changes(
    conn: sa.Connection, run_id: str, *, offset: int, limit: int, action: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    c = agent_sync_run_changes.c
    where = [c.run_id == run_id] + ([c.action == action] if action else [])
    total = conn.execute(
        sa.select(sa.func.count()).select_from(agent_sync_run_changes).where(*where)
    ).scalar_one()
    q = (
        sa.select(*(c[k] for k in CHANGE_FIELDS))
        .where(*where)
        .order_by(c.id)
        .offset(offset)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q)], int(total)


def fail_unfinished(conn: sa.Connection, message: str, now: Any, keep_id: str = "") -> int:
    """Runs left `running` by a process that died (call only under the sync lock)."""
    result = conn.execute(
        agent_sync_runs.update()
        .where(agent_sync_runs.c.status == "running", agent_sync_runs.c.id != keep_id)
        .values(status="failed", error=message, finished_at=now)
    )
    return result.rowcount
