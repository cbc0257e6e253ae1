"""Real `atryum run` processes: kill -9 during an apply, and replicas sharing PostgreSQL.

Covers agent-sync.md §7.5 (never two syncs at once, across replicas) and §7.6 (a kill during a
sync never leaves the registry half-applied).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from atryum.db.engine import make_engine
from atryum.sync.runs import list_runs
from atryum.validmind.sim.notify import sign
from tests.e2e.processes import AtryumProcess
from tests.e2e.registry import atryum_view, settled, validmind_view
from tests.support import ORG, SLUG, wait_until

# About 13 MB of rows: the kill lands once 4 MB of the apply are written, with most of it to go
# (each test checks that it did: the run is interrupted, never succeeded).
RECORDS = 10_000
WEBHOOK_SECRET = "replica-webhook-secret-" + "w" * 24


def _count(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        n: int = conn.execute(sa.text("SELECT count(*) FROM agents")).scalar_one()
    return n


def _pending_bytes(engine: sa.Engine, db_url: str) -> int:
    """Observable only from outside: the uncommitted writes of an apply transaction take room
    on disk — this database's own agents table (PostgreSQL, via the URL's search_path) or WAL
    file (SQLite) — while none of them is visible yet. Other tests' databases never count."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            size: int = conn.execute(sa.text("SELECT pg_relation_size('agents')")).scalar_one()
        return size
    wal = Path(db_url.removeprefix("sqlite:///") + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def _apply_started(engine: sa.Engine, db_url: str, baseline: int) -> bool:
    return _pending_bytes(engine, db_url) > baseline + 4 * 1024 * 1024


def _quiet_baseline(engine: sa.Engine, db_url: str) -> int:
    """Disk use before the next apply; on SQLite the WAL is checkpointed and emptied first, so
    that the apply's writes make it grow again."""
    if engine.dialect.name == "sqlite":

        def truncated() -> bool:
            # outside any transaction (the engine's connections always BEGIN IMMEDIATE)
            raw = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                busy: int = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                raw.close()
            return busy == 0

        wait_until(truncated)
    return _pending_bytes(engine, db_url)


def _status(engine: sa.Engine, run_id: str) -> str | None:
    """A run's status in the history; None while its row is not written yet."""
    return next((r["status"] for r in list_runs(engine, limit=1000) if r["id"] == run_id), None)


def _registry(engine: sa.Engine) -> list[tuple[str, str, bool]]:
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text("SELECT vm_cuid, charter, removed_at IS NOT NULL FROM agents ORDER BY vm_cuid")
        )
        return [(cuid, charter, bool(removed)) for cuid, charter, removed in rows]


@pytest.fixture
def procs() -> Iterator[list[AtryumProcess]]:
    started: list[AtryumProcess] = []
    yield started
    for p in started:
        p.stop()


def _scope_a_new_atryum(
    db_url: str, sim_url: str, tmp_path: Path, procs: list[AtryumProcess]
) -> tuple[AtryumProcess, sa.Engine, str]:
    """A real `atryum run` on `db_url`, its scope set: (process, an engine, the sync run id)."""
    atryum = AtryumProcess(tmp_path, "a", database_url=db_url, sim_url=sim_url)
    procs.append(atryum.start())
    r = _set_scope(atryum.url)
    return atryum, make_engine(db_url), r.json()["sync_run_id"]


def _set_scope(url: str) -> httpx2.Response:
    return httpx2.put(
        f"{url}/api/v1/settings", json={"org_cuid": ORG, "agent_record_type_slug": SLUG}
    )


def _two_scoped_replicas(
    tmp_path: Path, procs: list[AtryumProcess], **config: Any
) -> tuple[AtryumProcess, AtryumProcess]:
    """Two real `atryum run` replicas sharing `config`, the scope set through the first."""
    a = AtryumProcess(tmp_path, "a", **config)
    procs.append(a.start())
    b = AtryumProcess(tmp_path, "b", **config)
    procs.append(b.start())
    r = _set_scope(a.url)
    assert r.status_code == 200
    return a, b


def test_kill_9_during_apply_leaves_before_or_after(
    db_url: str, sim: Any, sim_state: Any, tmp_path: Path, procs: list[AtryumProcess]
) -> None:
    sim_state.bulk_create(ORG, SLUG, count=RECORDS, charter_bytes=1000)
    atryum, engine, run_id = _scope_a_new_atryum(db_url, sim.url, tmp_path, procs)
    try:
        wait_until(lambda: _apply_started(engine, db_url, 0), timeout=120, interval=0.005)
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


def test_kill_9_during_an_updating_apply_leaves_before_or_after(
    db_url: str, sim: Any, sim_state: Any, tmp_path: Path, procs: list[AtryumProcess]
) -> None:
    """The same for a re-sync that rewrites every charter and retires a tenth of the agents:
    after the kill the registry is exactly the state before the run, or exactly the one after."""
    cuids = sim_state.bulk_create(ORG, SLUG, count=RECORDS, charter_bytes=1000)
    atryum, engine, first = _scope_a_new_atryum(db_url, sim.url, tmp_path, procs)
    try:
        wait_until(lambda: _status(engine, first) not in (None, "running"), timeout=120)
        before = _registry(engine)
        assert len(before) == RECORDS and not any(removed for _, _, removed in before)
        revised = "Revised charter. " + "x" * 1000
        for cuid in cuids:
            sim_state.update_record(cuid, custom_fields={"charter": revised})
        gone = set(cuids[: RECORDS // 10])
        for cuid in gone:
            sim_state.archive_record(cuid)
        # retired agents keep the charter they had: their records are absent from the pull
        after = [
            (cuid, charter, True) if cuid in gone else (cuid, revised, False)
            for cuid, charter, _ in before
        ]
        baseline = _quiet_baseline(engine, db_url)
        r = httpx2.post(f"{atryum.url}/api/v1/agents/sync", json={"allow_removals": True})
        run_id = r.json()["id"]
        wait_until(lambda: _apply_started(engine, db_url, baseline), timeout=120, interval=0.005)
        atryum.kill9()
        state = _registry(engine)
        assert state in (before, after), "the registry was left half-applied"
        procs.append(atryum.start())
        wait_until(lambda: _status(engine, run_id) == "failed")
        r = httpx2.post(
            f"{atryum.url}/api/v1/agents/sync?wait=true", json={"allow_removals": True}, timeout=300
        )
        assert r.json()["status"] == "succeeded", r.text
        assert _registry(engine) == after
    finally:
        engine.dispose()


@pytest.fixture
def pg_url(pg_admin: sa.Engine, request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL schema shared by the replicas of one test."""
    from tests.conftest import _pg_schema_url

    schema, url = _pg_schema_url(pg_admin)
    request.addfinalizer(lambda: _drop(pg_admin, schema))
    return url


def _assert_never_overlapped(engine: sa.Engine) -> None:
    """No two runs overlap in time; a run still running (a later trigger) must be the last."""
    runs = list_runs(engine, limit=500)
    spans = sorted(
        (r["started_at"], r["finished_at"] or datetime.max.replace(tzinfo=UTC), r["status"])
        for r in runs
    )
    for (_, end, _), (start, _, _) in itertools.pairwise(spans):
        assert end <= start, f"two replicas synced at the same time: {spans}"
    assert {r["status"] for r in runs if r["finished_at"]} <= {"succeeded", "held"}, spans


def test_two_replicas_on_postgresql_never_overlap(
    pg_url: str, sim: Any, sim_state: Any, tmp_path: Path, procs: list[AtryumProcess]
) -> None:
    cuids = [
        sim_state.create_record(ORG, SLUG, name=f"A{i}", custom_fields={"charter": "c"})["cuid"]
        for i in range(60)
    ]
    sim_state.set_faults(delay_seconds=0.05)
    config = {"database_url": pg_url, "sim_url": sim.url, "sync": {"interval_seconds": 5}}
    a, b = _two_scoped_replicas(tmp_path, procs, **config)
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
    engine = make_engine(pg_url)
    try:
        # no run running (queued runs are not written yet) and the registry matches ValidMind
        wait_until(lambda: settled(a.url, sim_state, engine), timeout=120)
        final = httpx2.post(f"{b.url}/api/v1/agents/sync?wait=true", timeout=120).json()
        assert final["status"] == "succeeded", final
        _assert_never_overlapped(engine)
        agents = httpx2.get(f"{a.url}/api/v1/agents").json()["items"]
        assert {x["vm_cuid"] for x in agents} == set(cuids[10:])
        assert atryum_view(b.url) == validmind_view(sim_state)
    finally:
        engine.dispose()


def test_two_replicas_on_postgresql_accept_each_signed_event_once(
    pg_url: str, sim: Any, sim_state: Any, tmp_path: Path, procs: list[AtryumProcess]
) -> None:
    cuids = [
        sim_state.create_record(ORG, SLUG, name=f"A{i}", custom_fields={"charter": "c"})["cuid"]
        for i in range(12)
    ]
    config = {"database_url": pg_url, "sim_url": sim.url, "webhook_secret": WEBHOOK_SECRET}
    a, b = _two_scoped_replicas(tmp_path, procs, **config)
    engine = make_engine(pg_url)
    try:
        wait_until(lambda: settled(a.url, sim_state, engine), timeout=60)
        changes: list[tuple[str, str]] = []
        for cuid in cuids[:3]:
            sim_state.archive_record(cuid)
            changes.append(("record.archived", cuid))
        for cuid in cuids[3:6]:
            sim_state.update_record(cuid, name=f"Renamed {cuid}", custom_fields={"charter": "d"})
            changes.append(("record.updated", cuid))
        for i in range(3):
            cuid = sim_state.create_record(ORG, SLUG, name=f"N{i}", custom_fields={})["cuid"]
            changes.append(("record.created", cuid))
        bodies = [_signed_event(kind, cuid) for kind, cuid in changes]

        def deliver_to_both(body: bytes) -> list[tuple[int, str]]:
            """The same event, to both replicas at the same moment."""
            with ThreadPoolExecutor(max_workers=2) as pair:
                answers = list(pair.map(lambda url: _post_event(url, body), [a.url, b.url]))
            return sorted((r.status_code, r.json()["status"]) for r in answers)

        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = list(pool.map(deliver_to_both, bodies))
        assert outcomes == [[(200, "duplicate"), (202, "accepted")]] * len(bodies), outcomes

        events = httpx2.get(f"{a.url}/api/v1/validmind/events?limit=500").json()["items"]
        assert sorted(e["id"] for e in events) == sorted(json.loads(b)["id"] for b in bodies)

        def webhook_runs_done() -> bool:
            """Every event folded into a run, each such run written and finished."""
            listed = httpx2.get(f"{b.url}/api/v1/validmind/events?limit=500").json()["items"]
            folded_into = {e["sync_run_id"] for e in listed}
            finished = {r["id"] for r in list_runs(engine, limit=500) if r["finished_at"]}
            return None not in folded_into and folded_into <= finished

        wait_until(webhook_runs_done, timeout=60)
        wait_until(lambda: settled(a.url, sim_state, engine), timeout=30)
        assert atryum_view(b.url) == validmind_view(sim_state)
        _assert_never_overlapped(engine)
    finally:
        engine.dispose()


def _signed_event(kind: str, record_cuid: str) -> bytes:
    payload = {"id": str(uuid.uuid4()), "type": kind, "org_cuid": ORG, "record_cuid": record_cuid}
    return json.dumps(payload).encode()


def _post_event(url: str, body: bytes) -> httpx2.Response:
    stamp = str(int(time.time()))
    return httpx2.post(
        f"{url}/api/v1/validmind/events",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Atryum-Timestamp": stamp,
            "X-Atryum-Signature": sign(WEBHOOK_SECRET, stamp, body),
        },
        timeout=30,
    )


def _drop(admin: sa.Engine, schema: str) -> None:
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
