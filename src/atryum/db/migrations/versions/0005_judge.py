"""Charter judge: LLM configs, rules' confidence and shadow mode, client sessions.

Rules gain `min_confidence` and `shadow` (the Go judge fields come with 0008_go_compat), and
approvals the `ai_escalated` status.

Revision ID: 0005_judge
Revises: 0008_go_compat
"""

import sqlalchemy as sa
from alembic import op

from atryum.db.types import UTCDateTime

revision = "0005_judge"
down_revision = "0004_mcp_servers"
branch_labels = None
depends_on = None

# Frozen copies of the value lists at this revision (tables.py may grow later).
_APPROVAL_STATUSES_BEFORE = (
    "status IN ('pending', 'auto_approved', 'auto_denied', 'approved', 'denied', 'expired', "
    "'cancelled')"
)
_APPROVAL_STATUSES = (
    "status IN ('pending', 'ai_escalated', 'auto_approved', 'auto_denied', 'approved', 'denied', "
    "'expired', 'cancelled')"
)
_PROVIDERS = "provider IN ('openai', 'anthropic', 'openai_compatible')"


def upgrade() -> None:
    op.create_table(
        "llm_configs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("api_key", sa.Text, nullable=True),
        sa.Column("base_url", sa.String(2048), nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("timeout_seconds", sa.Float, nullable=False, server_default="20"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(_PROVIDERS, name="ck_llm_configs_provider"),
    )
    op.create_table(
        "client_sessions",
        sa.Column("agent_key", sa.String(256), primary_key=True),
        sa.Column("client_session_id", sa.String(256), primary_key=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_client_sessions_last_seen_at", "client_sessions", ["last_seen_at"])
    op.create_index(
        "ix_invocations_session",
        "invocations",
        ["agent_id", "client_session_id", "submitted_at"],
    )
    with op.batch_alter_table("approval_rules") as batch:
        batch.add_column(sa.Column("min_confidence", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("shadow", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("approvals") as batch:
        batch.drop_constraint("ck_approvals_status", type_="check")
        batch.create_check_constraint("ck_approvals_status", _APPROVAL_STATUSES)


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_constraint("ck_approvals_status", type_="check")
        batch.create_check_constraint("ck_approvals_status", _APPROVAL_STATUSES_BEFORE)
    with op.batch_alter_table("approval_rules") as batch:
        for column in ("shadow", "min_confidence"):
            batch.drop_column(column)
    op.drop_index("ix_invocations_session", "invocations")
    op.drop_table("client_sessions")
    op.drop_table("llm_configs")
