"""Migration 0002 on both dialects: creates the gateway tables, downgrades cleanly, re-applies."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from atryum.db import migrate
from atryum.db.engine import make_engine

GATEWAY = {"invocations", "invocation_events", "approvals", "approval_rules", "gateway_policy"}


def test_downgrade_to_0001_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    assert set(sa.inspect(engine).get_table_names()) >= GATEWAY
    with engine.begin() as conn:
        command.downgrade(migrate._alembic_config(conn), "0001")
    assert migrate.current_revision(engine) == "0001"
    assert not GATEWAY & set(sa.inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_an_event_needs_its_invocation(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO invocation_events (id, invocation_id, seq, type, status, created_at, "
                "data) VALUES ('e', 'no-such-invocation', 1, 'received', 'received', "
                "'2026-01-01', '{}')"
            )
        )


def test_unknown_statuses_are_refused_by_the_database(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO invocations (id, source, tool, input, status, submitted_at, "
                "updated_at) VALUES ('i', 's', 't', '{}', 'approved-ish', '2026-01-01', "
                "'2026-01-01')"
            )
        )
