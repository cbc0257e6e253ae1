"""MCP proxy: the upstream servers behind /mcp/{server}.

Revision ID: 0004_mcp_servers
Revises: 0008_go_compat
"""

import sqlalchemy as sa
from alembic import op

from atryum.db.types import UTCDateTime

revision = "0004_mcp_servers"
down_revision = "0008_go_compat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("endpoint_slug", sa.String(256), nullable=False, unique=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("base_url", sa.Text, nullable=False, server_default=""),
        sa.Column("command", sa.Text, nullable=False, server_default=""),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("env", sa.JSON, nullable=False),
        sa.Column("auth_token", sa.Text, nullable=True),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="30"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("connection_status", sa.String(16), nullable=False, server_default="unknown"),
        sa.Column("last_checked_at", UTCDateTime, nullable=True),
        sa.Column("last_error_summary", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("mode IN ('stdio', 'http')", name="ck_mcp_servers_mode"),
    )


def downgrade() -> None:
    op.drop_table("mcp_servers")
