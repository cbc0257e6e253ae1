"""The operator-change door: a record commits with its change and rolls back with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from atryum.audit import AuditFilter, list_changes, record_change
from atryum.identity.principal import OperatorPrincipal

ALICE = OperatorPrincipal(
    issuer="https://idp.test", subject="alice", name="Alice", method="session", role="admin"
)


def _all(engine: sa.Engine, **flt: object) -> tuple[list, int]:
    with engine.connect() as conn:
        return list_changes(conn, flt=AuditFilter(**flt), offset=0, limit=50)  # type: ignore[arg-type]


def test_a_record_keeps_the_principal_and_before_after(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        record_change(
            conn,
            actor=ALICE,
            entity="rule",
            entity_id="r1",
            action="update",
            before={"enabled": True, "at": datetime(2025, 1, 1, tzinfo=UTC)},
            after={"enabled": False},
        )
    items, total = _all(engine)
    assert total == 1
    entry = items[0]
    assert (entry.actor, entry.actor_name, entry.actor_method) == (
        "https://idp.test#alice",
        "Alice",
        "session",
    )
    assert entry.before == {"enabled": True, "at": "2025-01-01 00:00:00+00:00"}
    assert entry.after == {"enabled": False}


def test_a_rolled_back_change_leaves_no_record(engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        record_change(
            conn, actor=ALICE, entity="rule", entity_id="r1", action="delete", before={}, after=None
        )
        raise RuntimeError("the change failed")
    assert _all(engine) == ([], 0)


def test_filters_and_paging(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for i in range(3):
            record_change(
                conn,
                actor=ALICE,
                entity="rule",
                entity_id=f"r{i}",
                action="create",
                before=None,
                after={"i": i},
            )
        record_change(
            conn,
            actor="cli",
            entity="api_token",
            entity_id="t",
            action="create",
            before=None,
            after={},
        )
    assert _all(engine, entity="rule")[1] == 3
    assert _all(engine, actor="Alice")[1] == 3
    assert _all(engine, actor="https://idp.test#alice")[1] == 3
    assert _all(engine, actor="cli")[1] == 1
    assert _all(engine, since=datetime.now(UTC) + timedelta(minutes=1))[1] == 0
    with engine.connect() as conn:
        page, total = list_changes(conn, flt=AuditFilter(), offset=1, limit=2)
    assert total == 4 and len(page) == 2
