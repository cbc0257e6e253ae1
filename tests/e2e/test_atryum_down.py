"""Atryum down while records change in ValidMind (agent-sync.md §2, §5): a real `atryum run`
process, a real simulator sending signed events. Stop Atryum, change records, start it again on
the same port and database: the simulator's retries plus the sync bring the registry exactly in
line with ValidMind, and every change event sent meanwhile arrives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from atryum.db.engine import make_engine
from atryum.validmind.sim.app import SimServer
from atryum.validmind.sim.notify import Notifier
from tests.e2e.processes import AtryumProcess
from tests.e2e.registry import settled
from tests.support import ORG, SLUG, wait_until

SECRET = "e2e-webhook-secret-" + "z" * 24


@pytest.fixture
def fast_sim(sim_state: Any) -> Iterator[SimServer]:
    """The simulator, with a notifier that retries often (Atryum is down for seconds only)."""
    with SimServer(sim_state, notifier=Notifier(backoff_max=0.5)) as server:
        yield server


def received(atryum: AtryumProcess) -> set[tuple[str, str]]:
    items = httpx2.get(f"{atryum.url}/api/v1/validmind/events?limit=500", timeout=10).json()
    return {(e["type"], e["record_cuid"]) for e in items["items"]}


def test_atryum_down_while_records_change(
    db_url: str, fast_sim: SimServer, sim_state: Any, tmp_path: Path
) -> None:
    cuids = [
        sim_state.create_record(ORG, SLUG, name=f"A{i}", custom_fields={"charter": f"C{i}"})["cuid"]
        for i in range(6)
    ]
    atryum = AtryumProcess(
        tmp_path, "a", database_url=db_url, sim_url=fast_sim.url, webhook_secret=SECRET
    )
    atryum.start()
    engine = make_engine(db_url)
    try:
        r = httpx2.put(
            f"{atryum.url}/api/v1/settings",
            json={"org_cuid": ORG, "agent_record_type_slug": SLUG},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        r = httpx2.put(
            f"{fast_sim.url}/admin/notify",
            json={"atryum_url": atryum.url, "mode": "event", "webhook_secret": SECRET},
        )
        assert r.status_code == 200, r.text
        wait_until(lambda: settled(atryum.url, sim_state, engine), timeout=30)
        # events are wired: a change while Atryum is up reaches the registry
        sim_state.archive_record(cuids[0])
        wait_until(lambda: ("record.archived", cuids[0]) in received(atryum), timeout=30)
        wait_until(lambda: settled(atryum.url, sim_state, engine), timeout=30)

        atryum.stop()
        sim_state.archive_record(cuids[1])
        sim_state.update_record(cuids[2], name="Renamed", custom_fields={"charter": "new"})
        created = [
            sim_state.create_record(ORG, SLUG, name=f"New{i}", custom_fields={"charter": "n"})[
                "cuid"
            ]
            for i in range(2)
        ]
        # the simulator cannot deliver and keeps retrying
        wait_until(lambda: fast_sim.notifier.status()["retries"] >= 3, timeout=30)
        assert fast_sim.notifier.status()["pending"] == 4

        atryum.start()  # same port, same database
        wait_until(lambda: fast_sim.notifier.status()["pending"] == 0, timeout=60)
        status = fast_sim.notifier.status()
        assert (status["sent"], status["failed"]) == (5, 0), status
        expected = {
            ("record.archived", cuids[1]),
            ("record.updated", cuids[2]),
            *(("record.created", c) for c in created),
        }
        assert expected <= received(atryum), "a change event sent while Atryum was down is lost"
        wait_until(lambda: settled(atryum.url, sim_state, engine), timeout=30)
    finally:
        atryum.stop()
        engine.dispose()
