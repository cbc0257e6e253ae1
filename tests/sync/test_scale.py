"""A 100 000-record re-sync with nothing changed writes nothing but the confirmation: no row of
`agents` is inserted, updated or deleted (the org-wide confirmation is its `synced_at`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import sqlalchemy as sa

from atryum.agents import service as agents
from atryum.agents.store import AgentFilter
from atryum.config import parse_config
from atryum.sync.coordinator import SyncCoordinator
from atryum.sync.settings import update_settings
from atryum.validmind.client import AgentsPull, PageSink, ValidMindClient
from tests.support import ORG, SLUG

N = 100_000
PAGE = 500


class MemoryClient:
    """Answers the pull from generated records, page by page, as the HTTP client would."""

    def __enter__(self) -> MemoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def fetch_agents(
        self, org_cuid: str, record_type_slug: str, *, on_page: PageSink | None = None
    ) -> AgentsPull:
        assert on_page is not None
        for start in range(0, N, PAGE):
            on_page(
                "Org",
                N,
                [
                    {
                        "cuid": f"rec-{i:06d}",
                        "name": f"Agent {i}",
                        "custom_fields": {"charter": f"May do task {i}.", "description": "d"},
                    }
                    for i in range(start, min(start + PAGE, N))
                ],
            )
        return AgentsPull(ORG, "Org", [], N, True, [], received=N)


def test_a_big_re_sync_with_nothing_changed_writes_only_the_confirmation(
    engine: sa.Engine,
) -> None:
    config = parse_config({"sync": {"max_removals": N, "max_removal_ratio": 1.0}}, "(test)")
    update_settings(
        engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=config.sync
    )
    factory = cast(Callable[[], ValidMindClient], MemoryClient)
    coordinator = SyncCoordinator(engine, config=config, client_factory=factory)
    first = coordinator.run_blocking(trigger="manual")
    assert (first["status"], first["created"], first["changes_total"]) == ("succeeded", N, N)
    sample = agents.page_agents(engine, flt=AgentFilter(), offset=0, limit=1)[0][0]
    if engine.dialect.name == "postgresql":  # the big run refreshed the planner's statistics
        with engine.connect() as conn:
            estimate = conn.execute(
                sa.text("SELECT reltuples FROM pg_class WHERE oid = 'agents'::regclass")
            ).scalar_one()
        assert estimate > N * 0.9, estimate

    writes: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if re.match(r"\s*(INSERT|UPDATE|DELETE|COPY)", statement, re.IGNORECASE):
            writes.append(" ".join(statement.split())[:80])

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        again = coordinator.run_blocking(trigger="manual")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert (again["status"], again["unchanged"], again["changes_total"]) == ("succeeded", N, 0)
    touched = [w for w in writes if re.search(r"\bagents\b", w, re.IGNORECASE)]
    assert touched == [], touched
    assert all(re.search(r"agent_sync_runs|agent_sync_settings|atryum_sync_", w) for w in writes), (
        writes
    )
    confirmed = agents.get_agent(engine, agent_id=sample.id)
    assert confirmed.updated_at == sample.updated_at and confirmed.charter == sample.charter
    assert confirmed.synced_at is not None and sample.synced_at is not None
    assert confirmed.synced_at > sample.synced_at  # confirmed by the no-change run
