"""SQL for the sync run history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from atryum.db.tables import agent_sync_runs


def insert_run(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(agent_sync_runs.insert().values(**values))


def update_run(conn: sa.Connection, run_id: str, values: dict[str, Any]) -> None:
    conn.execute(agent_sync_runs.update().where(agent_sync_runs.c.id == run_id).values(**values))


def get_run(conn: sa.Connection, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(agent_sync_runs).where(agent_sync_runs.c.id == run_id)).first()
    return dict(row._mapping) if row else None


def list_runs(conn: sa.Connection, *, limit: int) -> list[dict[str, Any]]:
    q = (
        sa.select(agent_sync_runs)
        .order_by(agent_sync_runs.c.started_at.desc(), agent_sync_runs.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def fail_unfinished(conn: sa.Connection, message: str, now: Any, keep_id: str = "") -> int:
    """Runs left `running` by a process that died (call only under the sync lock)."""
    result = conn.execute(
        agent_sync_runs.update()
        .where(agent_sync_runs.c.status == "running", agent_sync_runs.c.id != keep_id)
        .values(status="failed", error=message, finished_at=now)
    )
    return result.rowcount
