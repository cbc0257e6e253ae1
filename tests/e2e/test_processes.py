"""Real `atryum run` processes: kill -9 during an apply, and replicas sharing PostgreSQL.

Covers agent-sync.md §7.5 (never two syncs at once, across replicas) and §7.6 (a kill during a
sync never leaves the registry half-applied).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from atryum.db.engine import make_engine
from atryum.sync.runs import list_runs
from tests.e2e.processes import AtryumProcess
from tests.support import ORG, SLUG, wait_until

RECORDS = 40_000


def _count(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        n: int = conn.execute(sa.text("SELECT count(*) FROM agents")).scalar_one()
    return n


def _apply_in_progress(engine: sa.Engine, db_url: str) -> bool:
    """Observable only from outside: uncommitted writes of the apply transaction."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            return bool(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                        "AND query LIKE 'INSERT INTO agents%'"
                    )
                ).scalar_one()
            )
    wal = Path(db_url.removeprefix("sqlite:///") + "-wal")
    return wal.exists() and wal.stat().st_size > 8 * 1024 * 1024


@pytest.fixture
def procs() -> Iterator[list[AtryumProcess]]:
    started: list[AtryumProcess] = []
    yield started
    for p in started:
        p.stop()


def test_kill_9_during_apply_leaves_before_or_after(
    db_url: str, sim: Any, sim_state: Any, tmp_path: Path, procs: list[AtryumProcess]
) -> None:
    sim_state.bulk_create(ORG, SLUG, count=RECORDS, charter_bytes=1000)
    atryum = AtryumProcess(tmp_path, "a", database_url=db_url, sim_url=sim.url)
    procs.append(atryum.start())
    engine = make_engine(db_url)
    try:
        r = httpx2.put(
            f"{atryum.url}/api/v1/settings",
            json={"org_cuid": ORG, "agent_record_type_slug": SLUG},
        )
        run_id = r.json()["sync_run_id"]
        wait_until(lambda: _apply_in_progress(engine, db_url), timeout=120, interval=0.005)
        atryum.kill9()
        assert _count(engine) in (0, RECORDS), "the registry was left half-applied"
        stale = next(r for r in list_runs(engine) if r["id"] == run_id)
        assert stale["status"] == "running"  # nobody could mark it: the process is gone
        # restart: the interrupted run is marked failed, and the next sync completes the job
        procs.append(atryum.start())
        wait_until(
            lambda: next(r for r in list_runs(engine) if r["id"] == run_id)["status"] == "failed"
        )
        failed = next(r for r in list_runs(engine) if r["id"] == run_id)
        assert "interrupted" in failed["error"]
        r = httpx2.post(f"{atryum.url}/api/v1/agents/sync?wait=true", timeout=300)
        assert r.json()["status"] == "succeeded", r.text
        assert _count(engine) == RECORDS
    finally:
        engine.dispose()


def test_two_replicas_on_postgresql_never_overlap(
    pg_admin: sa.Engine,
    sim: Any,
    sim_state: Any,
    tmp_path: Path,
    procs: list[AtryumProcess],
    request: pytest.FixtureRequest,
) -> None:
    from tests.conftest import _pg_schema_url

    schema, url = _pg_schema_url(pg_admin)
    request.addfinalizer(lambda: _drop(pg_admin, schema))
    cuids = [
        sim_state.create_record(ORG, SLUG, name=f"A{i}", custom_fields={"charter": "c"})["cuid"]
        for i in range(60)
    ]
    sim_state.set_faults(delay_seconds=0.05)
    config = {"database_url": url, "sim_url": sim.url, "sync": {"interval_seconds": 5}}
    a = AtryumProcess(tmp_path, "a", **config)
    procs.append(a.start())
    b = AtryumProcess(tmp_path, "b", **config)
    procs.append(b.start())
    r = httpx2.put(
        f"{a.url}/api/v1/settings", json={"org_cuid": ORG, "agent_record_type_slug": SLUG}
    )
    assert r.status_code == 200
    replicas = itertools.cycle([a.url, b.url])
    targets = [next(replicas) for _ in range(40)]

    def trigger(i_url: tuple[int, str]) -> int:
        i, base = i_url
        if i % 4 == 0:
            sim_state.archive_record(cuids[i // 4])
        return httpx2.post(f"{base}/api/v1/agents/sync", timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(trigger, enumerate(targets)))
    assert set(statuses) == {202}
    engine = make_engine(url)
    try:

        def all_finished() -> bool:
            runs = list_runs(engine, limit=500)
            return bool(runs) and all(r["status"] not in ("running",) for r in runs)

        wait_until(all_finished, timeout=120)
        final = httpx2.post(f"{b.url}/api/v1/agents/sync?wait=true", timeout=120).json()
        assert final["status"] == "succeeded", final
        runs = list_runs(engine, limit=500)
        spans = sorted((r["started_at"], r["finished_at"]) for r in runs if r["finished_at"])
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, "two replicas synced at the same time"
        assert {r["status"] for r in runs} <= {"succeeded", "held"}
        agents = httpx2.get(f"{a.url}/api/v1/agents").json()["items"]
        assert {x["vm_cuid"] for x in agents} == set(cuids[10:])
    finally:
        engine.dispose()


def _drop(admin: sa.Engine, schema: str) -> None:
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
