"""Signed change events over real HTTP: refusals, replays (also across a restart), debounce."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from atryum.config import Config
from atryum.sync.runs import list_runs
from atryum.sync.settings import update_settings
from atryum.validmind.sim.notify import sign
from tests.e2e.registry import assert_never, atryum_view, idle, validmind_view
from tests.support import ORG, SLUG, LiveServer, wait_until

SECRET = "event-secret-" + "x" * 24


def event(record_cuid: str = "r1", kind: str = "record.archived", **extra: Any) -> bytes:
    body = {
        "id": str(uuid.uuid4()),
        "type": kind,
        "org_cuid": ORG,
        "record_cuid": record_cuid,
        "occurred_at": "2026-11-24T10:00:00Z",
        **extra,
    }
    return json.dumps(body).encode()


def headers(body: bytes, *, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "Content-Type": "application/json",
        "X-Atryum-Timestamp": stamp,
        "X-Atryum-Signature": sign(secret, stamp, body),
    }


@pytest.fixture
def config(sim: Any, sim_config: Callable[..., Config]) -> Config:
    return sim_config(sim.url, validmind={"webhook_secret": SECRET, "debounce_seconds": 0.3})


@pytest.fixture
def server(
    engine: sa.Engine, config: Config, live_atryum: Callable[..., LiveServer]
) -> Iterator[LiveServer]:
    update_settings(
        engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=config.sync
    )
    with live_atryum(config, engine) as srv:
        yield srv


def post(server: LiveServer, body: bytes, hdrs: dict[str, str]) -> httpx2.Response:
    return httpx2.post(f"{server.url}/api/v1/validmind/events", content=body, headers=hdrs)


def listed_events(server: LiveServer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx2.get(
        f"{server.url}/api/v1/validmind/events?limit=500"
    ).json()["items"]
    return items


def finished_with_events(
    engine: sa.Engine, server: LiveServer, *, count: int
) -> dict[str, Any] | None:
    """The newest run once `count` events are folded into runs that are all written and
    finished, and none is running."""
    folded = [e["sync_run_id"] for e in listed_events(server) if e["sync_run_id"]]
    runs = {r["id"]: r for r in list_runs(engine)}
    if len(folded) != count or not idle(engine):
        return None
    if any(run_id not in runs or runs[run_id]["status"] == "running" for run_id in folded):
        return None  # a run an event was folded into is not written or not finished yet
    return list_runs(engine)[0]


def test_refusals_never_trigger_a_sync(server: LiveServer, engine: sa.Engine) -> None:
    body = event()
    cases = [
        ({**headers(body), "X-Atryum-Signature": "v1=" + "ab" * 32}, 401, "does not match"),
        (headers(body, secret="wrong-secret-" + "y" * 24), 401, "does not match"),
        ({"Content-Type": "application/json"}, 401, "missing"),
        (headers(body, ts=int(time.time()) - 301), 401, "300 s"),
    ]
    for hdrs, status, fragment in cases:
        r = post(server, body, hdrs)
        assert r.status_code == status and fragment in r.json()["error"]["message"], r.text
    bad = b'{"id": 1}'
    r = post(server, bad, headers(bad))
    assert r.status_code == 400 and "id" in r.json()["error"]["message"]
    big = event(pad="x" * (65 * 1024))
    r = post(server, big, headers(big))
    assert r.status_code == 413
    assert listed_events(server) == []
    # Longer than the debounce window (0.3 s): a sync wrongly triggered would have started.
    assert_never(lambda: list_runs(engine), seconds=1.0)
    # One valid event afterwards gets exactly one run, with only that event folded in.
    valid = event()
    assert post(server, valid, headers(valid)).status_code == 202
    run = wait_until(lambda: finished_with_events(engine, server, count=1))
    runs = list_runs(engine)
    assert [r["id"] for r in runs] == [run["id"]] and run["triggers"] == ["webhook"]
    folded = [(e["id"], e["sync_run_id"]) for e in listed_events(server)]
    assert folded == [(json.loads(valid)["id"], run["id"])]


def test_non_ascii_signature_is_401(server: LiveServer) -> None:
    body = event()
    for bad in ("v1=\u00e9".encode() + b"0" * 62, b"v1=" + "\u0661".encode() * 32):
        r = post(server, body, {**headers(body), "X-Atryum-Signature": bad})  # type: ignore[dict-item]
        assert r.status_code == 401, r.text
        assert "ASCII" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("field", "limit"), [("id", 128), ("type", 32), ("org_cuid", 128), ("record_cuid", 128)]
)
def test_fields_longer_than_the_column_are_400(
    server: LiveServer, engine: sa.Engine, field: str, limit: int
) -> None:
    too_long = event(**{field: "x" * (limit + 1)})
    r = post(server, too_long, headers(too_long))
    assert r.status_code == 400, r.text
    assert f"'{field}'" in r.json()["error"]["message"]
    at_limit = event(id="i" * 128, org_cuid="o" * 128, record_cuid="r" * 128)
    r = post(server, at_limit, headers(at_limit))
    assert r.status_code == 202, r.text  # the column holds it, on both dialects
    listed = httpx2.get(f"{server.url}/api/v1/validmind/events").json()["items"]
    assert [e["id"] for e in listed] == ["i" * 128]


def test_deeply_nested_body_is_refused(server: LiveServer) -> None:
    """Refused at the door by the JSON depth limit (every body), before the signature check."""
    for body in (
        b"[" * 30_000 + b"]" * 30_000,
        event(extra=[]).replace(b"[]", b"[" * 9000 + b"]" * 9000),
    ):
        r = post(server, body, headers(body))
        assert r.status_code == 422, r.text
        assert "levels deep; at most 64 are accepted" in r.json()["error"]["message"]
    assert httpx2.get(f"{server.url}/api/v1/validmind/events").json()["items"] == []


def test_replay_is_ignored_also_after_restart(
    engine: sa.Engine, config: Config, live_atryum: Callable[..., LiveServer], sim_state: Any
) -> None:
    update_settings(
        engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=config.sync
    )
    sim_state.create_record(ORG, SLUG, name="A", custom_fields={})
    body = event()
    with live_atryum(config, engine) as srv:
        assert post(srv, body, headers(body)).status_code == 202
        first = wait_until(lambda: finished_with_events(engine, srv, count=1))
        assert post(srv, body, headers(body)).json()["status"] == "duplicate"
        # longer than the debounce window (0.3 s), while the server still runs
        assert_never(lambda: len(list_runs(engine)) != 1, seconds=1.0)
    with live_atryum(config, engine) as srv:  # a restart: the replay guard is in the database
        r = post(srv, body, headers(body))
        assert r.status_code == 200 and r.json()["status"] == "duplicate"
        assert_never(lambda: len(list_runs(engine)) != 1, seconds=1.0)
        # a new event afterwards: exactly one more run, with only the new event folded in
        fresh = event("r2")
        assert post(srv, fresh, headers(fresh)).status_code == 202
        second = wait_until(lambda: finished_with_events(engine, srv, count=2))
        runs = list_runs(engine)
        assert [r["id"] for r in runs] == [second["id"], first["id"]]
        assert [r["triggers"] for r in runs] == [["webhook"], ["webhook"]]
        folded = {e["id"]: e["sync_run_id"] for e in listed_events(srv)}
        assert folded == {
            json.loads(body)["id"]: first["id"],
            json.loads(fresh)["id"]: second["id"],
        }


def test_burst_of_events_collapses_and_registry_matches(
    engine: sa.Engine,
    sim: Any,
    sim_state: Any,
    sim_config: Callable[..., Config],
    live_atryum: Callable[..., LiveServer],
) -> None:
    """100 events in a burst shorter than the debounce window: at most 2 runs (the first
    event's, and one follow-up for the rest). The window is 5 s, not the default 2 s, so that
    a loaded machine still sends the burst within it."""
    config = sim_config(sim.url, validmind={"webhook_secret": SECRET, "debounce_seconds": 5})
    update_settings(
        engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=config.sync
    )
    cuids = [
        sim_state.create_record(ORG, SLUG, name=f"A{i}", custom_fields={"charter": f"C{i}"})["cuid"]
        for i in range(30)
    ]
    for cuid in cuids[:10]:
        sim_state.archive_record(cuid)
    for cuid in cuids[10:15]:
        sim_state.update_record(cuid, name=f"renamed {cuid}", custom_fields={"charter": "new"})
    bodies = [event(cuids[i % 30]) for i in range(100)]
    with live_atryum(config, engine) as server, httpx2.Client(base_url=server.url) as client:

        def send(body: bytes) -> int:
            r = client.post("/api/v1/validmind/events", content=body, headers=headers(body))
            return r.status_code

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(send, bodies))
        assert statuses == [202] * 100 and time.monotonic() - started < 5
        wait_until(lambda: finished_with_events(engine, server, count=100), timeout=20)
        assert atryum_view(server.url) == validmind_view(sim_state)
        assert len(atryum_view(server.url)) == 20
        runs = list_runs(engine)
        assert 1 <= len(runs) <= 2, [(r["trigger"], r["status"]) for r in runs]
        assert all(r["status"] == "succeeded" for r in runs), runs
        assert all(r["triggers"] == ["webhook"] for r in runs), [r["triggers"] for r in runs]
        folded = {e["sync_run_id"] for e in listed_events(server)}
        assert folded <= {r["id"] for r in runs}


def test_events_off_without_secret(
    engine: sa.Engine,
    sim: Any,
    sim_config: Callable[..., Config],
    live_atryum: Callable[..., LiveServer],
) -> None:
    with live_atryum(sim_config(sim.url), engine) as srv:
        body = event()
        r = post(srv, body, headers(body))
        assert r.status_code == 503 and "webhook_secret" in r.json()["error"]["message"]


def test_rotation_accepts_current_and_previous_secret_only(
    engine: sa.Engine,
    sim: Any,
    sim_config: Callable[..., Config],
    live_atryum: Callable[..., LiveServer],
) -> None:
    """During a rotation both secrets sign valid events (each exactly 24 bytes, the minimum)."""
    current, previous = "n" * 24, "\u00e9" * 12  # 24 bytes in UTF-8
    config = sim_config(
        sim.url,
        validmind={"webhook_secret": current, "previous_webhook_secret": previous},
    )
    with live_atryum(config, engine) as srv:
        for secret in (current, previous):
            body = event()
            r = post(srv, body, headers(body, secret=secret))
            assert r.status_code == 202, r.text
        for secret in (SECRET, "n" * 23, current + "x", "\u00e9" * 11):
            body = event()
            r = post(srv, body, headers(body, secret=secret))
            assert r.status_code == 401 and "does not match" in r.json()["error"]["message"]
        assert len(listed_events(srv)) == 2


@pytest.mark.parametrize("key", ["webhook_secret", "previous_webhook_secret"])
def test_secrets_of_23_bytes_refused_24_accepted(
    sim_config: Callable[..., Config], key: str
) -> None:
    from atryum.config import ConfigError

    base = {"webhook_secret": "c" * 32}
    assert sim_config("http://x", validmind={**base, key: "y" * 24}).validmind.secrets
    with pytest.raises(ConfigError, match=f"{key} must be at least 24 bytes"):
        sim_config("http://x", validmind={**base, key: "y" * 23})


def test_short_secret_refused_by_config(sim_config: Callable[..., Config]) -> None:
    from atryum.config import ConfigError

    with pytest.raises(ConfigError, match="at least 24 bytes"):
        sim_config("http://x", validmind={"webhook_secret": "short"})
