"""Following a SQLite file shared by several workers (`listener.follow_sqlite`): a change
committed by another process's connection reaches this process's waiters, exactly once, in
commit order, and still after the newest events were deleted. (PostgreSQL's LISTEN is covered
by the replica and worker tests.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from atryum.db import migrate
from atryum.db.engine import make_engine
from atryum.db.tables import invocations
from atryum.db.types import utcnow
from atryum.gateway import retention, service
from atryum.gateway.hub import RESYNC, Change, Hub
from atryum.gateway.listener import EventFeed, follow_sqlite
from atryum.gateway.service import CallRequest
from atryum.gateway.settings import defaults_from
from tests.support import make_config, run_async


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "shared.db")


@pytest.fixture
def other(path: str) -> Iterator[sa.Engine]:
    """The engine of another worker process on the same file."""
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def submit(engine: sa.Engine, tool: str) -> str:
    call = CallRequest(source="claude-code", tool=tool, input={})
    inv, _ = service.submit(
        engine, request=call, caller=None, defaults=defaults_from(make_config())
    )
    return inv.id


def test_another_process_commits_reach_the_hub_once_and_in_order(
    other: sa.Engine, path: str
) -> None:
    async def scenario() -> list[Change]:
        hub, connected = Hub(), asyncio.Event()
        sub = hub.subscribe()
        follower = asyncio.create_task(
            follow_sqlite(make_engine(f"sqlite:///{path}"), hub, connected)
        )
        await asyncio.wait_for(connected.wait(), 5)
        assert hub.via_database  # its own commits come this way too: no double delivery
        assert await sub.next(5) == RESYNC
        ids = [await asyncio.to_thread(submit, other, f"tool-{i}") for i in range(3)]
        seen: list[Change] = []
        while len(seen) < 6:  # received → pending_approval, for each
            change = await sub.next(5)
            assert change is not None, seen
            seen.append(change)
        assert await sub.next(0.3) is None
        follower.cancel()
        assert [c.invocation_id for c in seen] == [i for i in ids for _ in range(2)]
        return seen

    seen = run_async(scenario())
    assert [c.status for c in seen[:2]] == ["received", "pending_approval"]


def test_the_feed_sees_every_event_after_retention_deleted_the_newest(
    other: sa.Engine, path: str
) -> None:
    """SQLite hands a deleted newest rowid out again; the events' AUTOINCREMENT key (0015) is
    never reused: a feed that did not look between the sweep and the next call sees that call."""
    submit(other, "a")
    submit(other, "b")
    feed = EventFeed(path)
    try:
        with other.begin() as conn:  # both finished long ago
            conn.execute(
                invocations.update().values(
                    status="denied", updated_at=utcnow() - timedelta(days=40)
                )
            )
        assert retention.purge_finished(other, days=30) == 2
        after = submit(other, "c")
        assert {c.invocation_id for c in feed.changes()} == {after}
        assert feed.changes() == []  # nothing committed since
    finally:
        feed.close()
