"""Client sessions (`judge/store.py`) on SQLite and PostgreSQL: the in-process memo of fresh
sessions skips their reads and writes, and never stands in for a write that did not commit."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from atryum.db.tables import client_sessions
from atryum.db.types import utcnow
from atryum.judge import store

TTL = timedelta(days=7)


def _last_seen(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(client_sessions.c.last_seen_at)).scalars())


def _touch(conn: sa.Connection, when: datetime) -> None:
    store.touch_session(conn, "bot", "s1", now=when, cutoff=when - TTL)


def test_a_touch_rolled_back_is_written_by_the_next_call(engine: sa.Engine) -> None:
    now = utcnow()
    with engine.connect() as conn:
        conn.begin()
        _touch(conn, now)
        conn.rollback()
    assert _last_seen(engine) == []
    with engine.begin() as conn:
        _touch(conn, now + timedelta(seconds=1))
    assert len(_last_seen(engine)) == 1


def test_a_fresh_session_is_not_written_again_within_a_minute(engine: sa.Engine) -> None:
    now = utcnow()
    with engine.begin() as conn:
        _touch(conn, now)
    with engine.begin() as conn:
        _touch(conn, now + timedelta(seconds=30))
    assert _last_seen(engine) == [now]
    with engine.begin() as conn:
        _touch(conn, now + timedelta(minutes=2))
    assert _last_seen(engine) == [now + timedelta(minutes=2)]
