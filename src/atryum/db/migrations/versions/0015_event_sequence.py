"""SQLite: an AUTOINCREMENT key on invocation events, which the workers follow.

The key is `n INTEGER PRIMARY KEY AUTOINCREMENT`, the order workers follow events in
(gateway.listener.EventFeed). They were read by rowid, which SQLite hands out again once the
newest row is deleted (retention) and which VACUUM may renumber (SQLite's documentation); an
AUTOINCREMENT key is never reused and VACUUM keeps it. `id` stays unique. The table is rebuilt
(SQLite cannot change a primary key in place), each event keeping its rowid as `n` (about 2 s
for the 300 000 events of 100 000 calls). PostgreSQL follows events through LISTEN: nothing
changes there.

Revision ID: 0015_event_sequence
Revises: 0014_agent_key_cuid
"""

from alembic import op

revision = "0015_event_sequence"
down_revision = "0014_agent_key_cuid"
branch_labels = None
depends_on = None

COLUMNS = "id, invocation_id, seq, type, from_status, status, actor, created_at, data"
BODY = """
    invocation_id VARCHAR(36) NOT NULL,
    seq INTEGER NOT NULL,
    type VARCHAR(32) NOT NULL,
    from_status VARCHAR(24),
    status VARCHAR(24) NOT NULL,
    actor VARCHAR(256),
    created_at DATETIME NOT NULL,
    data JSON NOT NULL,
    CONSTRAINT uq_invocation_events_seq UNIQUE (invocation_id, seq),
    FOREIGN KEY (invocation_id) REFERENCES invocations (id) ON DELETE CASCADE
"""


def _rebuild(key: str, copied: str) -> None:
    op.execute(f"CREATE TABLE invocation_events_new ({key}, {BODY})")
    op.execute(
        f"INSERT INTO invocation_events_new ({copied}) "
        f"SELECT rowid, {COLUMNS} FROM invocation_events ORDER BY rowid"
    )
    op.execute("DROP TABLE invocation_events")
    op.execute("ALTER TABLE invocation_events_new RENAME TO invocation_events")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(
            "n INTEGER PRIMARY KEY AUTOINCREMENT, id VARCHAR(36) NOT NULL UNIQUE", f"n, {COLUMNS}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("id VARCHAR(36) NOT NULL PRIMARY KEY", f"rowid, {COLUMNS}")
