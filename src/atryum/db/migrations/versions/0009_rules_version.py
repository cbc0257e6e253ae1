"""`gateway_policy.rules_version`, bumped by every write to the rules.

It is bumped in the writer's transaction, so a decision serves the enabled rules from its
process's cache while the version it reads with the policy is the cached one (one statement and
the rule objects less per call).

Revision ID: 0009_rules_version
Revises: 0007_agent_page_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_rules_version"
down_revision = "0007_agent_page_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_policy") as batch:
        batch.add_column(sa.Column("rules_version", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("gateway_policy") as batch:
        batch.drop_column("rules_version")
