"""Table definitions (SQLAlchemy Core). The migrations create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from atryum.db.types import UTCDateTime

metadata = sa.MetaData()

agents = sa.Table(
    "agents",
    metadata,
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
        "(source = 'manual' AND vm_cuid IS NULL) OR (source = 'validmind' AND vm_cuid IS NOT NULL)",
        name="ck_agents_vm_cuid",
    ),
    sa.Index("uq_agents_vm_cuid", "vm_cuid", unique=True),
    sa.Index("ix_agents_org", "source", "vm_organization_cuid"),
)

# A runtime id (JWT client id, harness agent id) belongs to at most one agent: the primary key
# enforces it in the database. The API shows them as the agent's `agent_ids` list.
agent_runtime_ids = sa.Table(
    "agent_runtime_ids",
    metadata,
    sa.Column("runtime_id", sa.String(256), primary_key=True),
    sa.Column(
        "agent_id",
        sa.String(36),
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("position", sa.Integer, nullable=False),
)

agent_sync_settings = sa.Table(
    "agent_sync_settings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org_cuid", sa.String(128), nullable=False, server_default=""),
    sa.Column("org_name", sa.String(512), nullable=False, server_default=""),
    sa.Column("agent_record_type_slug", sa.String(128), nullable=False, server_default=""),
    sa.Column("charter_field_key", sa.String(128), nullable=False, server_default="charter"),
    sa.Column("default_agent_id", sa.String(36), nullable=True),
    sa.Column("interval_seconds", sa.Integer, nullable=True),
    sa.Column("max_removals", sa.Integer, nullable=True),
    sa.Column("max_removal_ratio", sa.Float, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("id = 1", name="ck_agent_sync_settings_single_row"),
)

managed_agent_bindings = sa.Table(
    "managed_agent_bindings",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "agent_id",
        sa.String(36),
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("account", sa.String(128), nullable=False, server_default="default"),
    sa.Column("external_agent_id", sa.String(256), nullable=False),
    sa.Column("external_agent_name", sa.String(512), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("account", "external_agent_id", name="uq_bindings_account_external"),
)

agent_sync_runs = sa.Table(
    "agent_sync_runs",
    metadata,
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
    sa.Index("ix_agent_sync_runs_started_at", "started_at"),
)
