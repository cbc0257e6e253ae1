"""Gateway: invocations, invocation events, approvals, approval rules, default policy.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from atryum.db.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the value lists at this revision (tables.py may grow later).
_INVOCATION_STATUSES = (
    "status IN ('received', 'pending_approval', 'approved', 'denied', 'expired', 'executing', "
    "'succeeded', 'failed', 'cancelled')"
)
_APPROVAL_STATUSES = (
    "status IN ('pending', 'auto_approved', 'auto_denied', 'approved', 'denied', 'expired', "
    "'cancelled')"
)
_RULE_ACTIONS = "action IN ('auto_approve', 'auto_deny', 'human_approval', 'ai_evaluation')"


def upgrade() -> None:
    op.create_table(
        "invocations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("tool", sa.String(512), nullable=False),
        sa.Column("input", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("request_id", sa.String(256), nullable=True),
        sa.Column("idempotency_key", sa.String(256), nullable=True),
        sa.Column("dedupe_key", sa.String(64), nullable=True),
        sa.Column("thread_id", sa.String(256), nullable=True),
        sa.Column("agent_id", sa.String(256), nullable=True),
        sa.Column("agent_record_id", sa.String(36), nullable=True),
        sa.Column("agent_name", sa.Text, nullable=True),
        sa.Column("caller", sa.String(256), nullable=True),
        sa.Column("client_session_id", sa.String(256), nullable=True),
        sa.Column("client_name", sa.String(256), nullable=True),
        sa.Column("client_version", sa.String(128), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("matched_rule_id", sa.String(36), nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("submitted_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("completed_at", UTCDateTime, nullable=True),
        sa.CheckConstraint(_INVOCATION_STATUSES, name="ck_invocations_status"),
    )
    op.create_index("uq_invocations_dedupe_key", "invocations", ["dedupe_key"], unique=True)
    op.create_index("ix_invocations_status", "invocations", ["status"])
    op.create_index("ix_invocations_submitted_at", "invocations", ["submitted_at"])
    op.create_index("ix_invocations_agent_record_id", "invocations", ["agent_record_id"])
    op.create_table(
        "invocation_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "invocation_id",
            sa.String(36),
            sa.ForeignKey("invocations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(24), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(256), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.UniqueConstraint("invocation_id", "seq", name="uq_invocation_events_seq"),
    )
    op.create_table(
        "approvals",
        sa.Column(
            "invocation_id",
            sa.String(36),
            sa.ForeignKey("invocations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("actor_id", sa.String(256), nullable=True),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("decision_at", UTCDateTime, nullable=True),
        sa.CheckConstraint(_APPROVAL_STATUSES, name="ck_approvals_status"),
    )
    op.create_index("ix_approvals_status_expires_at", "approvals", ["status", "expires_at"])
    op.create_table(
        "approval_rules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("server_patterns", sa.JSON, nullable=False),
        sa.Column("tool_patterns", sa.JSON, nullable=False),
        sa.Column("agent_cuids", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(_RULE_ACTIONS, name="ck_approval_rules_action"),
    )
    op.create_index("ix_approval_rules_position", "approval_rules", ["position"])
    op.create_table(
        "gateway_policy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("provider", sa.String(32), nullable=True),
        sa.Column("approval_timeout_seconds", sa.Integer, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_gateway_policy_single_row"),
    )


def downgrade() -> None:
    op.drop_table("gateway_policy")
    op.drop_table("approval_rules")
    op.drop_table("approvals")
    op.drop_table("invocation_events")
    op.drop_table("invocations")
