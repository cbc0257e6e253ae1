"""SQLite: the agent search table (FTS5) gathers 16 MB of new index entries in memory before it
writes a segment, instead of 1 MB. A first sync of 100 000 agents wrote a hundred small segments
and merged them while inserting (0.9 s to index the agents' text, against 0.6 s in one pass of
larger segments). The setting is kept in the table (`agent_search_config`); PostgreSQL has no
such table.

Revision ID: 0014_agent_search_hashsize
Revises: 0013_agent_all_key
"""

from alembic import op

revision = "0014_agent_search_hashsize"
down_revision = "0013_agent_all_key"
branch_labels = None
depends_on = None

_SET = "INSERT INTO agent_search (agent_search, rank) VALUES ('hashsize', {})"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SET.format(16 * 1024 * 1024))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SET.format(1024 * 1024))
