"""Apply Alembic migrations programmatically (start-up and `atryum migrate`).

A database already at head is recognised without Alembic: its `alembic_version` row is compared
with the head read off the migration files. Alembic (about a second of imports) is loaded only
when there is something to migrate.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x6174727975_01  # serialises migrations of several replicas
_REVISION = re.compile(r'^(down_revision|revision) = "([^"]+)"$', re.MULTILINE)


def _alembic_config(connection: sa.Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine) -> None:
    if current_revision(engine) == head_revision():
        return  # a replica never moves a database backwards: no lock is needed to skip
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        command.upgrade(_alembic_config(conn), "head")


def current_revision(engine: sa.Engine) -> str | None:
    """The database's revision (None before the first migration)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


@functools.cache
def head_revision() -> str | None:
    """The newest revision: the one no migration revises. Alembic decides if the files do not
    read as one line of plain `revision = "…"` / `down_revision = "…"` assignments."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for key, value in _REVISION.findall(path.read_text()):
            (revisions if key == "revision" else revised).add(value)
    heads = revisions - revised
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
