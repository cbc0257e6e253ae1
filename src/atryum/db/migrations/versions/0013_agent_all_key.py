"""Agents in every state in name order: `ix_agents_all_key`.

The index is (name_key, id, removed_at). A deep page of it sorted all 105 000 agents of a
registry of 100 000 active and 5 000 retired ones (bench/list_latency.py: 79 ms on SQLite, 52 ms
on PostgreSQL, against 12 and 15 ms for the active list, which `ix_agents_active_key` serves).
`removed_at` is in it for SQLite's planner, which walks it for the retired list too (name order,
no sort) and then reads the state from the index instead of from every agent's row (48 ms for a
deep page without it). It costs one index entry per agent.

Revision ID: 0013_agent_all_key
Revises: 0012_agent_name_key
"""

from alembic import op

revision = "0013_agent_all_key"
down_revision = "0012_agent_name_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_agents_all_key", "agents", ["name_key", "id", "removed_at"])


def downgrade() -> None:
    op.drop_index("ix_agents_all_key", table_name="agents")
