"""Retention of invocations and their events: off by default; when set, the background sweep
deletes finished calls past it and never an open one (issue 14 row 3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from atryum.db.tables import invocation_events, invocations
from atryum.db.types import utcnow
from atryum.gateway import retention
from tests.gateway.helpers import call, rule
from tests.gateway.test_service import submit
from tests.support import make_config, wait_until


def age(engine: sa.Engine, inv_id: str, days: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            invocations.update()
            .where(invocations.c.id == inv_id)
            .values(updated_at=utcnow() - timedelta(days=days))
        )


def remaining(engine: sa.Engine) -> tuple[set[str], set[str]]:
    with engine.connect() as conn:
        ids = set(conn.execute(sa.select(invocations.c.id)).scalars())
        with_events = set(conn.execute(sa.select(invocation_events.c.invocation_id)).scalars())
    return ids, with_events


def calls(engine: sa.Engine) -> dict[str, str]:
    rule(engine, "auto_deny", tools=["Denied*"])
    made = {
        "old denied": submit(engine, call("Denied1")).id,
        "old pending": submit(engine, call("Bash")).id,
        "recent denied": submit(engine, call("Denied2")).id,
    }
    age(engine, made["old denied"], 40)
    age(engine, made["old pending"], 40)
    age(engine, made["recent denied"], 5)
    return made


def test_retention_is_off_by_default() -> None:
    assert make_config().retention.invocations_days == 0


def test_finished_calls_past_retention_go_with_their_events(engine: sa.Engine) -> None:
    made = calls(engine)
    assert retention.purge_finished(engine, days=30) == 1
    ids, with_events = remaining(engine)
    assert ids == with_events == {made["old pending"], made["recent denied"]}
    assert retention.purge_finished(engine, days=30) == 0


def test_the_background_sweep_applies_the_configured_retention(
    engine: sa.Engine, live_atryum: Any
) -> None:
    made = calls(engine)
    config = make_config(retention={"invocations_days": 30, "sweep_interval_seconds": 0.05})
    with live_atryum(config, engine):
        wait_until(lambda: made["old denied"] not in remaining(engine)[0])
        assert remaining(engine)[0] == {made["old pending"], made["recent denied"]}
