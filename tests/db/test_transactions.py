"""Every transaction and lock is released on every exception path (issue 14 row 16).

Each case makes one statement inside one kind of transaction raise (the way a value the driver
cannot bind did), through the real HTTP routes, and then checks on both databases that no
connection is left checked out, the in-process SQLite queue is free, and another engine (as
another replica or process would) can write at once.
"""

from __future__ import annotations

import fcntl
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.agents import store as agent_store
from atryum.app import build_context, create_app
from atryum.db.engine import make_engine, sqlite_file
from atryum.gateway import service, store, tx
from atryum.sync import event_store, stage_store
from atryum.sync import store as sync_store
from atryum.sync.settings import update_settings
from atryum.validmind.sim.notify import sign
from tests.gateway.helpers import DEFAULTS, call
from tests.support import ORG, SLUG, make_config, wait_until

SECRET = "event-secret-" + "x" * 24
HOOK = "/api/v1/external/invocations"


class Boom(Exception):
    pass


def boom(*args: Any, **kwargs: Any) -> Any:
    raise Boom("a statement failed half-way")


@pytest.fixture
def client(engine: sa.Engine, sim: Any, sim_config: Any) -> Iterator[TestClient]:
    config = sim_config(sim.url, validmind={"webhook_secret": SECRET})
    app = create_app(build_context(config, engine), background=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def pending(client: TestClient) -> str:
    r = client.post(HOOK, json={"source": "claude-code", "tool": "Bash", "input": {"n": 1}})
    assert r.status_code == 201 and r.json()["status"] == "pending_approval"
    inv_id: str = r.json()["invocation_id"]
    return inv_id


def signed_event(client: TestClient) -> Any:
    body = json.dumps(
        {"id": "ev-1", "type": "record.updated", "org_cuid": ORG, "record_cuid": "r1"}
    ).encode()
    stamp = str(int(time.time()))
    headers = {"X-Atryum-Timestamp": stamp, "X-Atryum-Signature": sign(SECRET, stamp, body)}
    return client.post("/api/v1/validmind/events", content=body, headers=headers)


def sync_now(client: TestClient) -> Any:
    r = client.post("/api/v1/agents/sync", params={"wait": "true"})
    assert r.status_code == 200 and r.json()["status"] == "failed", r.text
    return r


# (what fails, the request that runs the transaction): each kind of transaction Atryum has.
CASES: dict[str, tuple[tuple[Any, str], Callable[[TestClient], Any]]] = {
    "hook submission": (
        (store, "insert_decision"),
        lambda c: c.post(HOOK, json={"source": "s", "tool": "t", "input": {}}),
    ),
    "approval": ((store, "update_approval"), lambda c: c.post(_review(c, "approve"))),
    "outcome report": (
        (store, "update_approval"),
        lambda c: c.patch(f"{HOOK}/{pending(c)}", json={"execution_status": "cancelled"}),
    ),
    "review list (read)": (
        (store, "list_invocations"),
        lambda c: c.get("/api/v1/review/invocations"),
    ),
    "rule change": (
        (store, "set_positions"),
        lambda c: c.post("/api/v1/rules", json={"action": "auto_approve"}),
    ),
    "policy change": (
        (store, "write_policy"),
        lambda c: c.put("/api/v1/policy", json={"provider": "always_deny"}),
    ),
    "agent change": (
        (agent_store, "replace_runtime_ids"),
        lambda c: c.post("/api/v1/agents", json={"name": "a", "agent_ids": ["rt-1"]}),
    ),
    "settings change": (
        (sync_store, "write_settings"),
        lambda c: c.patch("/api/v1/settings", json={"charter_field_key": "other"}),
    ),
    "sync run (apply under the sync lock)": ((stage_store, "insert_creates"), sync_now),
    "change event": ((event_store, "insert_event"), signed_event),
}


def _review(client: TestClient, action: str) -> str:
    return f"/api/v1/review/invocations/{pending(client)}/{action}"


def other_engine_can_write(db_url: str) -> None:
    """A write through a second engine finishes well within SQLite's 30 s busy wait."""
    other = make_engine(db_url)
    done: list[str] = []

    def write() -> None:
        inv, _ = service.submit(other, request=call("Probe"), caller=None, defaults=DEFAULTS)
        done.append(inv.id)

    try:
        worker = threading.Thread(target=write, daemon=True)
        worker.start()
        worker.join(10)
        assert done, "a write from another engine was blocked by a transaction left open"
    finally:
        other.dispose()


@pytest.mark.parametrize("case", list(CASES))
def test_a_failure_inside_a_transaction_releases_it(
    client: TestClient,
    engine: sa.Engine,
    db_url: str,
    sim_state: Any,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    (module, name), request = CASES[case]
    sim_state.create_record(ORG, SLUG, name="A", custom_fields={"charter": "c"})
    update_settings(
        engine,
        changes={"org_cuid": ORG, "agent_record_type_slug": SLUG, "charter_field_key": "charter"},
        defaults=make_config().sync,
    )
    monkeypatch.setattr(module, name, boom)  # the submission of a pending call does not use it
    r = request(client)
    assert r.status_code in (200, 500), r.text
    monkeypatch.undo()
    # A leaked connection stays checked out; the background sweeper's own read ends at once.
    wait_until(lambda: engine.pool.checkedout() == 0, timeout=5)  # type: ignore[attr-defined]
    assert not tx._queue_for(engine).threads.locked()
    path = sqlite_file(engine)
    if path is not None:  # the other processes' turn is free too
        with open(f"{path}-gate.lock", "ab") as other:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    other_engine_can_write(db_url)
    assert client.post(HOOK, json={"source": "s", "tool": "after", "input": {}}).status_code == 201
    assert client.patch("/api/v1/settings", json={"max_removals": 3}).status_code == 200
