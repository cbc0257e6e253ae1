"""Migrations produce the same schema behaviour on both dialects."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from atryum.db import migrate
from atryum.db.engine import make_engine
from atryum.db.tables import metadata
from tests.support import engine_at


def test_upgrade_is_idempotent_and_at_head(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert set(metadata.tables) <= tables


def test_the_head_read_off_the_files_is_alembics_and_a_partly_migrated_database_is_upgraded(
    db_url: str,
) -> None:
    """Start-up skips Alembic only for a database at head; one revision behind, it migrates."""
    from alembic import command
    from alembic.script import ScriptDirectory

    alembic_head = ScriptDirectory.from_config(migrate._alembic_config()).get_current_head()
    assert migrate.head_revision() == alembic_head
    engine = make_engine(db_url)
    assert migrate.current_revision(engine) is None
    with engine.begin() as conn:
        command.upgrade(migrate._alembic_config(conn), "0010_agent_search")
    assert migrate.current_revision(engine) == "0010_agent_search"
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == alembic_head
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("invocations")}
    assert "ix_invocations_page" in indexes
    engine.dispose()


def test_foreign_keys_enforced_on_every_connection(engine: sa.Engine) -> None:
    for _ in range(3):  # several pooled connections
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO agent_runtime_ids (runtime_id, agent_id, position) "
                    "VALUES ('x', 'no-such-agent', 0)"
                )
            )


def test_manual_agents_cannot_carry_a_vm_cuid(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO agents (id, source, vm_cuid, name, tags, created_at, updated_at) "
                "VALUES ('a', 'manual', 'vm-1', 'n', '[]', '2026-01-01', '2026-01-01')"
            )
        )


def test_0006_moves_each_runs_changes_into_their_own_table(db_url: str) -> None:
    """Runs recorded before 0006 keep their changes, in order, now paged from a table."""
    from atryum.sync import runs

    engine = engine_at(db_url, "0006_sync_changes-1")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO agent_sync_runs (id, trigger, status, started_at, warnings, changes) "
                "VALUES ('old', 'manual', 'held', '2026-01-01 00:00:00', '[]', :changes)"
            ),
            {
                "changes": '[{"action": "created", "agent_id": "a1", "vm_cuid": "c1", '
                '"name": "One", "reason": "new"}, {"action": "held", "agent_id": "a2", '
                '"vm_cuid": "c2", "name": "Two", "reason": "held"}]'
            },
        )
    migrate.upgrade(engine)
    run = runs.get_run(engine, run_id="old")
    assert (run["changes_total"], run["held"]) == (2, 1)
    assert [(c["action"], c["name"]) for c in run["changes"]] == [
        ("created", "One"),
        ("held", "Two"),
    ]
    engine.dispose()


def test_0015_keeps_every_event_and_its_order(db_url: str) -> None:
    """The SQLite rebuild keeps each event, its rowid as `n` (the feed's position), and the
    unique id; new events follow the old ones. Nothing changes on PostgreSQL."""
    engine = engine_at(db_url, "0014_agent_key_cuid")
    event = (  # the first event, then notes (a rule evaluated): a valid history
        "INSERT INTO invocation_events (id, invocation_id, seq, type, from_status, status, "
        "created_at, data) VALUES (:id, 'i', :seq, CASE :seq WHEN 1 THEN 'received' ELSE "
        "'rule_evaluated' END, CASE :seq WHEN 1 THEN NULL ELSE 'received' END, 'received', "
        "'2026-01-01', '{}')"
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO invocations (id, source, tool, input, status, submitted_at, "
                "updated_at) VALUES ('i', 's', 't', '{}', 'received', '2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(sa.text(event), [{"id": f"e{seq}", "seq": seq} for seq in (1, 2, 3)])
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(event), {"id": "e4", "seq": 4})
    order = "n" if engine.dialect.name == "sqlite" else "seq"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT id, seq FROM invocation_events ORDER BY {order}"))
        assert [tuple(r) for r in rows] == [("e1", 1), ("e2", 2), ("e3", 3), ("e4", 4)]
        if engine.dialect.name == "sqlite":
            ns = conn.execute(sa.text("SELECT n FROM invocation_events ORDER BY n")).scalars()
            assert list(ns) == [1, 2, 3, 4]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(event), {"id": "e1", "seq": 5})
    engine.dispose()


def test_each_migration_logs_a_one_line_summary() -> None:
    """What a first start logs per migration ("Running upgrade A -> B, <summary>") is one line:
    Alembic takes the docstring's first paragraph, so the detail stays in the file."""
    from alembic.script import ScriptDirectory

    scripts = list(ScriptDirectory.from_config(migrate._alembic_config()).walk_revisions())
    assert len(scripts) == len(list((migrate.MIGRATIONS / "versions").glob("*.py")))
    long = {s.revision: s.doc for s in scripts if "\n" in s.doc or len(s.doc) > 99}
    assert not long
