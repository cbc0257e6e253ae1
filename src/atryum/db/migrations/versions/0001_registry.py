"""Agent registry and ValidMind sync tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from atryum.db.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("vm_organization_cuid", sa.String(128), nullable=False, server_default=""),
        sa.Column("vm_organization_name", sa.String(512), nullable=False, server_default=""),
        sa.Column("vm_record_type_slug", sa.String(128), nullable=False, server_default=""),
        sa.Column("vm_cuid", sa.String(128), nullable=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("charter", sa.Text, nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=True),
        sa.Column("synced_at", UTCDateTime, nullable=True),
        sa.Column("removed_at", UTCDateTime, nullable=True),
        sa.Column("removal_reason", sa.String(32), nullable=True),
        sa.Column("source_missing_since", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("source IN ('validmind', 'manual')", name="ck_agents_source"),
        sa.CheckConstraint(
            "(source = 'manual' AND vm_cuid IS NULL) "
            "OR (source = 'validmind' AND vm_cuid IS NOT NULL)",
            name="ck_agents_vm_cuid",
        ),
    )
    op.create_index("uq_agents_vm_cuid", "agents", ["vm_cuid"], unique=True)
    op.create_index("ix_agents_org", "agents", ["source", "vm_organization_cuid"])
    op.create_table(
        "agent_runtime_ids",
        sa.Column("runtime_id", sa.String(256), primary_key=True),
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_agent_runtime_ids_agent_id", "agent_runtime_ids", ["agent_id"])
    op.create_table(
        "agent_sync_settings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_cuid", sa.String(128), nullable=False, server_default=""),
        sa.Column("org_name", sa.String(512), nullable=False, server_default=""),
        sa.Column("agent_record_type_slug", sa.String(128), nullable=False, server_default=""),
        sa.Column("charter_field_key", sa.String(128), nullable=False, server_default="charter"),
        sa.Column("default_agent_id", sa.String(36), nullable=True),
        sa.Column("interval_seconds", sa.Integer, nullable=True),
        sa.Column("max_removals", sa.Integer, nullable=True),
        sa.Column("max_removal_ratio", sa.Float, nullable=True),
        sa.Column("confirmed_org_cuid", sa.String(128), nullable=True),
        sa.Column("confirmed_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_agent_sync_settings_single_row"),
    )
    op.create_table(
        "managed_agent_bindings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("account", sa.String(128), nullable=False, server_default="default"),
        sa.Column("external_agent_id", sa.String(256), nullable=False),
        sa.Column("external_agent_name", sa.String(512), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("account", "external_agent_id", name="uq_bindings_account_external"),
    )
    op.create_index("ix_managed_agent_bindings_agent_id", "managed_agent_bindings", ["agent_id"])
    op.create_table(
        "agent_sync_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(256), nullable=False, server_default=""),
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("allow_removals", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("fetched", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("retired", sa.Integer, nullable=False, server_default="0"),
        sa.Column("restored", sa.Integer, nullable=False, server_default="0"),
        sa.Column("kept_dependent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped_invalid", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
    )
    op.create_index("ix_agent_sync_runs_started_at", "agent_sync_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("agent_sync_runs")
    op.drop_table("managed_agent_bindings")
    op.drop_table("agent_sync_settings")
    op.drop_table("agent_runtime_ids")
    op.drop_table("agents")
