"""`atryum run --workers N`: several processes on one port, on PostgreSQL and on a SQLite file; a
decision made in one worker wakes the callers waiting in another, and one worker runs the
schedule."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from tests.conftest import _pg_schema_url
from tests.e2e.processes import AtryumProcess, write_config
from tests.gateway.live import HOOK, REVIEW
from tests.support import free_port, wait_until

pytestmark = pytest.mark.e2e


def test_several_workers_are_refused_on_an_in_memory_database(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "a.toml",
        database_url="sqlite://",
        sim_url="",
        port=free_port(),
    )
    done = subprocess.run(
        [sys.executable, "-m", "atryum.cli", "run", "--config", str(config), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers 2 needs a database the workers share" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def workers(
    request: pytest.FixtureRequest, tmp_path: Path, pg_admin: sa.Engine
) -> Iterator[AtryumProcess]:
    schema, url = _pg_schema_url(pg_admin)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'workers.db'}"
    proc = AtryumProcess(
        tmp_path, "workers", database_url=url, sim_url="", env={"ATRYUM_WORKERS": "2"}
    )
    try:
        yield proc.start()
    finally:
        proc.stop()
        with pg_admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def test_two_workers_wake_each_others_waiters(workers: AtryumProcess) -> None:
    def schedulers() -> list[str]:
        return [
            line for line in workers.log_path.read_text().splitlines() if "atryum worker" in line
        ]

    wait_until(lambda: len(schedulers()) == 2, timeout=60)
    assert sorted(line.split("scheduler=")[1] for line in schedulers()) == ["False", "True"]

    calls = []
    for i in range(8):  # a fresh connection each: the kernel spreads them over the workers
        r = httpx2.post(
            workers.url + HOOK,
            json={"source": "claude-code", "tool": "Bash", "input": {"n": i}},
            timeout=10,
        )
        assert r.status_code == 201 and r.json()["status"] == "pending_approval", r.text
        calls.append(r.json()["invocation_id"])
    answered: dict[str, tuple[float, Any]] = {}
    sent = threading.Semaphore(0)

    def poll(inv_id: str) -> None:
        hooks = {"request": [lambda request: sent.release()]}
        with httpx2.Client(timeout=40, event_hooks=hooks) as http:
            r = http.get(f"{workers.url}{HOOK}/{inv_id}", params={"wait": 30})
        answered[inv_id] = (time.monotonic(), r.json()["status"])

    pollers = [threading.Thread(target=poll, args=(i,), daemon=True) for i in calls]
    for t in pollers:
        t.start()
    for _ in pollers:
        assert sent.acquire(timeout=20)
    for inv_id in calls:  # read back on fresh connections: the long polls have been received
        r = httpx2.get(f"{workers.url}{HOOK}/{inv_id}", timeout=10)
        assert r.json()["status"] == "pending_approval"
    assert not answered
    approved_at = {}
    for inv_id in calls:
        r = httpx2.post(f"{workers.url}{REVIEW}/{inv_id}/approve", json={}, timeout=10)
        assert r.status_code == 200, r.text
        approved_at[inv_id] = time.monotonic()
    for t in pollers:
        t.join(40)
    assert {status for _, status in answered.values()} == {"approved"}
    # the database (NOTIFY, or the followed SQLite events) wakes a waiter in the other worker at
    # once; without it, it would re-read only every 5 s
    lags = [answered[i][0] - approved_at[i] for i in calls]
    assert max(lags) < 3.0, lags
