"""§7.5: one sync at a time, on one replica or several; triggers coalesce; runs are detached."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from atryum.app import build_context
from atryum.config import Config
from atryum.sync.runs import list_runs
from atryum.sync.settings import update_settings
from tests.support import ORG, SLUG, LiveServer, free_port, wait_until


def _setup(engine: sa.Engine, config: Config, sim_state: Any) -> None:
    update_settings(
        engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=config.sync
    )
    for i in range(3):
        sim_state.create_record(ORG, SLUG, name=f"A{i}", custom_fields={"charter": "c"})


def _assert_no_overlap(runs: list[dict[str, Any]]) -> None:
    spans = sorted((r["started_at"], r["finished_at"]) for r in runs)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, f"two syncs overlapped: {spans}"


def test_burst_of_triggers_coalesces_into_one_follow_up(
    engine: sa.Engine, sim: Any, sim_state: Any, sim_config: Callable[..., Config]
) -> None:
    config = sim_config(sim.url)
    _setup(engine, config, sim_state)
    sim_state.set_faults(delay_seconds=0.3)
    ctx = build_context(config, engine)
    ctx.coordinator.start(schedule=False)
    try:
        first = ctx.coordinator.submit(trigger="manual")
        wait_until(lambda: ctx.coordinator.pending(first.run_id) is None)
        followers = [ctx.coordinator.submit(trigger="webhook") for _ in range(20)]
        assert len({t.run_id for t in followers}) == 1
        assert followers[0].coalesced == 19
        wait_until(lambda: followers[0].done.is_set())
    finally:
        ctx.coordinator.stop()
    runs = list_runs(engine)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"succeeded"}
    _assert_no_overlap(runs)


def test_two_replicas_never_sync_at_once(
    engine: sa.Engine, sim: Any, sim_state: Any, sim_config: Callable[..., Config]
) -> None:
    """Two coordinators on one database stand for two replicas (advisory / file lock)."""
    config = sim_config(sim.url)
    _setup(engine, config, sim_state)
    sim_state.set_faults(delay_seconds=0.2)
    replicas = [build_context(config, engine).coordinator for _ in range(2)]
    results: list[dict[str, Any]] = []

    def run(c: Any) -> None:
        for _ in range(2):
            results.append(c.run_blocking(trigger="manual"))

    threads = [threading.Thread(target=run, args=(c,)) for c in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4 and {r["status"] for r in results} == {"succeeded"}
    _assert_no_overlap(list_runs(engine))
    with engine.begin() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM agents")).scalar_one()
    assert n == 3


def test_lock_timeout_skips_and_says_why(
    engine: sa.Engine, sim: Any, sim_state: Any, sim_config: Callable[..., Config]
) -> None:
    from atryum.sync.lock import sync_lock

    config = sim_config(sim.url)
    _setup(engine, config, sim_state)
    coordinator = build_context(config, engine).coordinator
    coordinator.lock_timeout = 0.3
    with sync_lock(engine, timeout=1):
        run = coordinator.run_blocking(trigger="manual")
    assert run["status"] == "skipped" and "sync lock" in run["error"]


def test_stale_running_run_is_marked_interrupted(
    engine: sa.Engine, sim: Any, sim_state: Any, sim_config: Callable[..., Config]
) -> None:
    from atryum.sync.service import RunRequest, start_run

    config = sim_config(sim.url)
    _setup(engine, config, sim_state)
    start_run(engine, RunRequest(run_id="dead", trigger="manual"))  # its process was killed
    build_context(config, engine).coordinator.run_blocking(trigger="manual")
    dead = next(r for r in list_runs(engine) if r["id"] == "dead")
    assert dead["status"] == "failed" and "interrupted" in dead["error"]


def _finished_run(engine: sa.Engine, trigger: str) -> dict[str, Any] | None:
    return next(
        (r for r in list_runs(engine) if r["trigger"] == trigger and r["finished_at"]), None
    )


@pytest.mark.parametrize("validmind", ["refusing", "silent"])
def test_startup_neither_blocks_nor_fails_when_validmind_is_unreachable(
    engine: sa.Engine,
    sim_config: Callable[..., Config],
    live_atryum: Callable[..., LiveServer],
    validmind: str,
) -> None:
    """§2.1: the start-up sync runs in the background once the server listens; ValidMind not
    answering (connection refused, or a server that never replies) costs a failed run only."""
    with contextlib.ExitStack() as stack:
        if validmind == "silent":  # accepts connections (kernel backlog) and never answers
            silent = stack.enter_context(socket.socket())
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            port = silent.getsockname()[1]
        else:
            port = free_port()
        config = sim_config(f"http://127.0.0.1:{port}", backend={"agents_timeout_seconds": 3})
        update_settings(
            engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=config.sync
        )
        with live_atryum(config, engine, background=True) as server:
            started = wait_until(
                lambda: [r for r in list_runs(engine) if r["trigger"] == "startup"]
            )
            health = httpx2.get(f"{server.url}/healthz", timeout=2)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            if validmind == "silent":  # the server answered while the sync was still waiting
                assert started[0]["status"] == "running"
            run = wait_until(lambda: _finished_run(engine, "startup"), timeout=20)
    assert run["status"] == "failed" and run["requested_by"] == "startup"
    assert run["error"].startswith("fetch from ValidMind failed; nothing was changed: "), run
    assert "GET /agents" in run["error"]


def test_scheduled_sync_runs_every_interval(
    engine: sa.Engine,
    sim: Any,
    sim_state: Any,
    sim_config: Callable[..., Config],
    live_atryum: Callable[..., LiveServer],
) -> None:
    """§2.2, with the shortest interval the settings accept (5 s, ±10 % jitter)."""
    config = sim_config(sim.url)
    _setup(engine, config, sim_state)
    update_settings(engine, changes={"interval_seconds": 5}, defaults=config.sync)
    with live_atryum(config, engine, background=True):
        run = wait_until(lambda: _finished_run(engine, "schedule"), timeout=20, interval=0.1)
    assert (run["status"], run["requested_by"], run["unchanged"]) == ("succeeded", "scheduler", 3)
    startup = _finished_run(engine, "startup")
    assert startup is not None and startup["created"] == 3


def test_run_overtaken_by_a_settings_change_is_followed_by_a_new_run(
    engine: sa.Engine,
    sim: Any,
    sim_state: Any,
    sim_config: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The settings changed during the fetch without the API queueing a sync (e.g. `atryum setup
    validmind` in another process): the stale run applies nothing and the coordinator follows up."""
    from atryum.sync import service

    config = sim_config(sim.url)
    _setup(engine, config, sim_state)
    sim_state.add_record_type(ORG, "model", "Model")
    real_fetch = service._fetch
    changed: list[bool] = []

    def fetch_then_change(*args: Any) -> Any:
        pull = real_fetch(*args)
        if not changed:
            changed.append(True)
            update_settings(
                engine, changes={"agent_record_type_slug": "model"}, defaults=config.sync
            )
        return pull

    monkeypatch.setattr(service, "_fetch", fetch_then_change)
    ctx = build_context(config, engine)
    ctx.coordinator.start(schedule=False)
    try:
        first = ctx.coordinator.submit(trigger="manual")
        wait_until(first.done.is_set)
        follow = wait_until(lambda: _finished_run(engine, "settings"))
    finally:
        ctx.coordinator.stop()
    stale = next(r for r in list_runs(engine) if r["id"] == first.run_id)
    assert (stale["status"], stale["error"]) == ("skipped", service.SETTINGS_CHANGED)
    assert follow["status"] == "succeeded" and follow["requested_by"] == "settings"
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM agents")).scalar_one() == 0


def test_change_events_start_a_sync_at_once_and_collapse_the_rest(
    engine: sa.Engine, sim: Any, sim_state: Any, sim_config: Callable[..., Config]
) -> None:
    """§5 with a leading edge: the first event of a quiet period syncs at once; the events of
    its debounce window (and of the run it started) make one follow-up run."""
    config = sim_config(sim.url)
    _setup(engine, config, sim_state)
    ctx = build_context(config, engine)
    ctx.coordinator.start(schedule=False)
    submitted: list[str] = []
    try:

        def event() -> None:
            ctx.coordinator.submit_debounced(
                trigger="webhook",
                requested_by="validmind events",
                delay=0.5,
                on_submit=lambda t: submitted.append(t.run_id),
            )

        event()
        assert len(submitted) == 1  # no waiting for the window
        for _ in range(30):
            event()
        assert len(submitted) == 1
        wait_until(lambda: len(submitted) == 2)
        quiet_from = time.monotonic() + 0.5  # the follow-up opened a new window

        def finished() -> bool:
            runs = list_runs(engine)
            return len(runs) == 2 and all(r["finished_at"] for r in runs)

        wait_until(finished)
        assert len(set(submitted)) == 2
        # quiet for longer than the window: the next event syncs at once again
        wait_until(lambda: time.monotonic() > quiet_from)
        event()
        assert len(submitted) == 3
    finally:
        ctx.coordinator.stop()
