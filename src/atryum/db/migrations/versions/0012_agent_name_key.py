"""Agents' sort key, `name_key = lower(name)`, and the list indexes on it.

The key is a generated column. PostgreSQL answers a deep page from the index alone (it does no
index-only scan on an expression index): 117 → 7 ms for the ids of offset 50 000 of 100 000
agents. `ix_agents_active_key` (name_key, id) for active agents replaces `ix_agents_active_name`
on `lower(name)`; `ix_agents_key` (removed_at, name_key, id) replaces `ix_agents_lower_name`
(removed_at, lower(name), id), which SQLite's planner would otherwise pick for the filter and
then sort by `name_key`. Names are at most 512 characters (the API and the sync shorten or
refuse longer ones), so an index row stays below PostgreSQL's limit. SQLite computes the column
when read (a VIRTUAL column: `ADD COLUMN` cannot add a stored one).

Revision ID: 0012_agent_name_key
Revises: 0011_invocation_page_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_agent_name_key"
down_revision = "0011_invocation_page_index"
branch_labels = None
depends_on = None

ACTIVE = sa.text("removed_at IS NULL")


def upgrade() -> None:
    kind = "STORED" if op.get_bind().dialect.name == "postgresql" else "VIRTUAL"
    op.execute(
        f"ALTER TABLE agents ADD COLUMN name_key TEXT GENERATED ALWAYS AS (lower(name)) {kind}"
    )
    op.create_index(
        "ix_agents_active_key",
        "agents",
        ["name_key", "id"],
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.drop_index("ix_agents_active_name", table_name="agents")
    op.create_index("ix_agents_key", "agents", ["removed_at", "name_key", "id"])
    op.drop_index("ix_agents_lower_name", table_name="agents")


def downgrade() -> None:
    op.create_index("ix_agents_lower_name", "agents", ["removed_at", sa.text("lower(name)"), "id"])
    op.drop_index("ix_agents_key", table_name="agents")
    op.create_index(
        "ix_agents_active_name",
        "agents",
        [sa.text("lower(name)"), "id"],
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.drop_index("ix_agents_active_key", table_name="agents")
    op.execute("ALTER TABLE agents DROP COLUMN name_key")
