"""SQL for received ValidMind change events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from atryum.db.tables import validmind_events

# The longest value each text field of an event may have: the column's length.
FIELD_LENGTHS: dict[str, int] = {
    name: cast(int, cast(sa.String, validmind_events.c[name].type).length)
    for name in ("id", "type", "org_cuid", "record_cuid")
}


def insert_event(conn: sa.Connection, values: dict[str, Any]) -> bool:
    """Insert; False when an event with this id was already recorded (a replay)."""
    try:
        with conn.begin_nested():
            conn.execute(validmind_events.insert().values(**values))
    except sa.exc.IntegrityError:
        return False
    return True


def fold_into_run(conn: sa.Connection, run_id: str, received_until: datetime) -> int:
    result = conn.execute(
        validmind_events.update()
        .where(
            validmind_events.c.sync_run_id.is_(None),
            validmind_events.c.received_at <= received_until,
        )
        .values(sync_run_id=run_id)
    )
    return result.rowcount


def list_events(
    conn: sa.Connection, *, offset: int = 0, limit: int
) -> tuple[list[dict[str, Any]], int]:
    q = (
        sa.select(validmind_events)
        .order_by(validmind_events.c.received_at.desc(), validmind_events.c.id)
        .offset(offset)
        .limit(limit)
    )
    total = conn.execute(sa.select(sa.func.count()).select_from(validmind_events)).scalar_one()
    return [dict(r._mapping) for r in conn.execute(q)], int(total)
