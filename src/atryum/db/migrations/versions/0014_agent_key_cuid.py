"""The agent picker's count from the name indexes alone (PostgreSQL).

`ix_agents_active_key` and `ix_agents_all_key` carry `vm_cuid` (INCLUDE), the other column a
picker search matches, so a search matching every agent counts them with an index-only scan
instead of reading every agent's row, charter and all (bench/list_latency.py,
`/api/v1/agents/search?q=agent` over 100 000 agents: a parallel scan of 118 MB of rows against
10 MB of index). SQLite has no INCLUDE and needs none (that search meets its target there):
nothing changes on it.

Revision ID: 0014_agent_key_cuid
Revises: 0013_agent_all_key
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_agent_key_cuid"
down_revision = "0013_agent_all_key"
branch_labels = None
depends_on = None

ACTIVE = sa.text("removed_at IS NULL")


def _recreate(include: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_agents_active_key", table_name="agents")
    op.create_index(
        "ix_agents_active_key",
        "agents",
        ["name_key", "id"],
        postgresql_where=ACTIVE,
        postgresql_include=include,
    )
    op.drop_index("ix_agents_all_key", table_name="agents")
    op.create_index(
        "ix_agents_all_key", "agents", ["name_key", "id", "removed_at"], postgresql_include=include
    )


def upgrade() -> None:
    _recreate(["vm_cuid"])


def downgrade() -> None:
    _recreate([])
