"""Engines per dialect: SQLite (WAL, foreign keys on every connection) and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from atryum.db.checkpoint import BACKSTOP_PAGES


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    event.listen(engine, "connect", _postgres_on_connect)
    return engine


def _postgres_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # No JIT compilation: Atryum's queries are short, and one the planner costs high (a search
    # matching every one of 100 000 agents) spends 100 to 200 ms compiling before it runs
    # (PostgreSQL's jit_above_cost is 100 000); a sync's bulk writes take as long without it
    # (measured on a first sync of 100 000 agents). Committed, so that the pool's rollback on
    # check-in keeps it.
    cur = dbapi_conn.cursor()
    cur.execute("SET jit = off")
    cur.close()
    dbapi_conn.commit()


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (pysqlite's own transaction handling is off), so every
    # write transaction takes the write lock up front and reads see one snapshot.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # Checkpoints are a background thread's work (db.checkpoint); this is the backstop.
    cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cur.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"


def sqlite_file(engine: sa.Engine) -> str | None:
    """The file of a SQLite database; None for PostgreSQL and in-memory SQLite."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    if engine.url.query.get("mode") == "memory":
        return None
    return database
