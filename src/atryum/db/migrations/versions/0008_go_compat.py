"""Go compatibility: an invocation's error is any JSON value; judge references on rules.

The Go original's hooks report a failed tool with the tool's response object as `error`, so the
column becomes JSON (existing texts become JSON strings). `ai_evaluation` rules name their judge
with the Go fields `atryum_llm_config_id` / `model_config_cuid` (judge.md).

Revision ID: 0008_go_compat
Revises: 0003_identity
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008_go_compat"
down_revision = "0003_identity"
branch_labels = None
depends_on = None

_invocations = sa.table("invocations", sa.column("id", sa.String), sa.column("error", sa.Text))


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("ALTER TABLE invocations ALTER COLUMN error TYPE JSON USING to_json(error)")
    else:
        # SQLite stores JSON as text: encoding the existing texts is the whole change. (Retyping
        # the column would rebuild the table, and dropping the old one cascades to its events.)
        rows = conn.execute(
            sa.select(_invocations.c.id, _invocations.c.error).where(
                _invocations.c.error.is_not(None)
            )
        ).all()
        for inv_id, error in rows:
            conn.execute(
                _invocations.update()
                .where(_invocations.c.id == inv_id)
                .values(error=json.dumps(error))
            )
    with op.batch_alter_table("approval_rules") as batch:
        batch.add_column(sa.Column("atryum_llm_config_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("model_config_cuid", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approval_rules") as batch:
        batch.drop_column("model_config_cuid")
        batch.drop_column("atryum_llm_config_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE invocations ALTER COLUMN error TYPE TEXT USING error::text")
