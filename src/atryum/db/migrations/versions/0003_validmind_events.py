"""ValidMind change events (replay guard + history) and the triggers folded into each run.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from atryum.db.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "validmind_events",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("org_cuid", sa.String(128), nullable=False),
        sa.Column("record_cuid", sa.String(128), nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("sync_run_id", sa.String(36), nullable=True),
    )
    op.create_index("ix_validmind_events_received_at", "validmind_events", ["received_at"])
    with op.batch_alter_table("agent_sync_runs") as batch:
        batch.add_column(sa.Column("triggers", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_sync_runs") as batch:
        batch.drop_column("triggers")
    op.drop_table("validmind_events")
