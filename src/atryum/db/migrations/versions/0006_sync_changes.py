"""Sync runs' changes in their own table, paged; indexes for paged agent lists.

The run row keeps the summaries; the indexes serve paged agent lists (name order) and the sync's
registry check.

A run of a 100 000-agent organization listed every change in one JSON value of its row (16 MB);
the run list read them all. Existing runs' changes move into `agent_sync_run_changes`, in order.

Revision ID: 0006_sync_changes
Revises: 0008_go_compat
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006_sync_changes"
down_revision = "0005_judge"
branch_labels = None
depends_on = None

BATCH = 2000
FIELDS = ("action", "agent_id", "vm_cuid", "name", "reason")


def _changes_table() -> sa.Table:
    return op.create_table(
        "agent_sync_run_changes",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        # The foreign key comes last: on SQLite, rebuilding agent_sync_runs (batch mode) would
        # cascade-delete the rows copied here.
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=True),
        sa.Column("vm_cuid", sa.String(128), nullable=True),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
    )


def upgrade() -> None:
    table = _changes_table()
    op.create_index("ix_agents_lower_name", "agents", ["removed_at", sa.text("lower(name)"), "id"])
    op.create_index(
        "ix_agents_org_updated", "agents", ["source", "vm_organization_cuid", "updated_at"]
    )
    op.create_index(
        "ix_agent_sync_run_changes_run", "agent_sync_run_changes", ["run_id", "action", "id"]
    )
    with op.batch_alter_table("agent_sync_runs") as batch:
        batch.add_column(sa.Column("held", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("changes_total", sa.Integer, nullable=False, server_default="0"))
    conn = op.get_bind()
    runs = sa.table(
        "agent_sync_runs",
        sa.column("id", sa.String),
        sa.column("started_at"),
        sa.column("changes", sa.JSON),
        sa.column("held", sa.Integer),
        sa.column("changes_total", sa.Integer),
    )
    ids = conn.execute(sa.select(runs.c.id).order_by(runs.c.started_at, runs.c.id)).scalars()
    for run_id in list(ids):
        changes: list[dict[str, Any]] = (
            conn.execute(sa.select(runs.c.changes).where(runs.c.id == run_id)).scalar() or []
        )
        rows = [
            {
                "run_id": run_id,
                "action": str(c.get("action") or ""),
                "agent_id": c.get("agent_id"),
                "vm_cuid": c.get("vm_cuid"),
                "name": str(c.get("name") or ""),
                "reason": str(c.get("reason") or ""),
            }
            for c in changes
            if isinstance(c, dict)
        ]
        for start in range(0, len(rows), BATCH):
            conn.execute(table.insert(), rows[start : start + BATCH])
        held = sum(1 for r in rows if r["action"] == "held")
        conn.execute(
            runs.update().where(runs.c.id == run_id).values(held=held, changes_total=len(rows))
        )
    with op.batch_alter_table("agent_sync_runs") as batch:
        batch.drop_column("changes")
    with op.batch_alter_table("agent_sync_run_changes") as batch:
        batch.create_foreign_key(
            "fk_agent_sync_run_changes_run",
            "agent_sync_runs",
            ["run_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("agent_sync_run_changes") as batch:
        batch.drop_constraint("fk_agent_sync_run_changes_run", type_="foreignkey")
    with op.batch_alter_table("agent_sync_runs") as batch:
        batch.add_column(sa.Column("changes", sa.JSON, nullable=False, server_default="[]"))
    conn = op.get_bind()
    changes = sa.table(
        "agent_sync_run_changes",
        *(sa.column(c) for c in ("id", "run_id", *FIELDS)),
    )
    runs = sa.table("agent_sync_runs", sa.column("id", sa.String), sa.column("changes", sa.JSON))
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(sa.select(changes).order_by(changes.c.id)):
        by_run.setdefault(row.run_id, []).append({k: getattr(row, k) for k in FIELDS})
    for run_id, items in by_run.items():
        conn.execute(runs.update().where(runs.c.id == run_id).values(changes=items))
    with op.batch_alter_table("agent_sync_runs") as batch:
        batch.drop_column("held")
        batch.drop_column("changes_total")
    op.drop_table("agent_sync_run_changes")
    op.drop_index("ix_agents_org_updated", table_name="agents")
    op.drop_index("ix_agents_lower_name", table_name="agents")
