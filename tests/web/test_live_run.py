"""Live run pages: a run waiting in the queue or for the sync lock, a running run, a lost run."""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from atryum.config import SyncConfig
from atryum.errors import NotFound
from atryum.sync import coordinator as coordinator_module
from atryum.sync import runs
from atryum.sync.lock import LockTimeout, sync_lock
from atryum.sync.settings import update_settings
from atryum.web import ui as ui_module
from tests.support import ORG, SLUG, LiveServer, wait_until
from tests.web.driver import UI

pytestmark = pytest.mark.browser


def _configure(engine: sa.Engine, sim_state: Any) -> None:
    sim_state.create_record(ORG, SLUG, name="Alpha", custom_fields={"charter": "May work."})
    update_settings(
        engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=SyncConfig()
    )


def _status(engine: sa.Engine, run_id: str) -> str | None:
    try:
        return str(runs.get_run(engine, run_id=run_id)["status"])
    except NotFound:
        return None


def test_a_queued_run_page_follows_the_run_through_the_lock_wait_to_its_result(
    ui: UI,
    atryum: LiveServer,
    sim_state: Any,
    sqlite_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page of a queued run stays on the run while the worker has taken it but waits for
    the sync lock (no row yet), and shows the result once the lock is free: never a 404."""
    page = ui.page
    _configure(sqlite_engine, sim_state)
    coordinator = atryum.ctx.coordinator

    # The worker's first lock wait ends when the test says so, as if another replica had held
    # the lock too long; later waits use the real lock, which the test holds.
    gate = threading.Event()
    gated: list[bool] = []
    real_lock = coordinator_module.sync_lock

    @contextlib.contextmanager
    def lock(engine: sa.Engine, *, timeout: float, poll: float = 0.2) -> Iterator[None]:
        if not gated:
            gated.append(True)
            gate.wait(30)
            raise LockTimeout("another Atryum replica held the sync lock (test)")
        with real_lock(engine, timeout=timeout, poll=poll):
            yield

    monkeypatch.setattr(coordinator_module, "sync_lock", lock)
    try:
        with sync_lock(sqlite_engine, timeout=5):
            busy = coordinator.submit(trigger="schedule", requested_by="scheduler")
            wait_until(lambda: gated)  # the worker is busy with the first run

            ui.goto("/ui/sync")
            page.get_by_role("button", name="Sync from ValidMind").click()
            run = page.locator(".run")
            expect(run).to_have_attribute("data-status", "queued")
            expect(page).to_have_url(re.compile(r"/ui/sync/runs/[0-9a-f-]+\?started=1$"))
            expect(run.locator(".run-headline")).to_have_text("Queued: waiting for the sync worker")
            run_id = run.get_attribute("data-run-id")
            assert run_id is not None and run_id != busy.run_id
            ui.shoot("run-queued")

            # the first run gives up; the worker takes ours and waits for the lock the test holds
            gate.set()
            expect(run).to_have_attribute("data-status", "starting")
            expect(run.locator(".run-headline")).to_have_text("Starting: waiting for the sync lock")
            expect(page.get_by_role("heading", name="Sync run")).to_be_visible()
            assert _status(sqlite_engine, run_id) is None  # not recorded yet
            assert coordinator.unwritten_view(run_id) is not None
            ui.shoot("run-starting")
    finally:
        gate.set()

    # the lock is free: the run is recorded, runs, and the page shows its result by itself
    expect(page.locator(".run")).to_have_attribute("data-status", "succeeded")
    expect(page.locator(".run-summary")).to_have_text("1 record fetched from ValidMind: 1 created.")
    expect(page).to_have_url(re.compile(rf"/ui/sync/runs/{run_id}$"))
    assert _status(sqlite_engine, busy.run_id) == "skipped"


def test_a_started_run_nobody_knows_is_given_up_on_with_a_clear_message(
    ui: UI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`?started=1` for a run that is never recorded (a restart emptied the in-memory queue):
    the page waits a bounded time, then says the run is unknown and links the history."""
    monkeypatch.setattr(ui_module, "UNKNOWN_RUN_GIVE_UP_SECONDS", 1.5)
    page = ui.page
    status_reads: list[str] = []
    page.on("request", lambda r: status_reads.append(r.url) if "/status" in r.url else None)

    ui.goto(f"/ui/sync/runs/{uuid.uuid4()}?started=1")
    run = page.locator(".run")
    expect(run).to_have_attribute("data-status", "starting")
    expect(run.locator(".run-headline")).to_have_text(
        "Starting: waiting for the run to be recorded"
    )
    expect(page.locator(".run-unknown")).to_be_hidden()

    expect(run).to_have_attribute("data-status", "unknown")
    expect(run.locator(".badge-status")).to_have_text("unknown")
    expect(run.locator(".run-headline")).to_have_text("Unknown: Atryum has no record of this run")
    notice = page.locator(".run-unknown")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Atryum restarted before the run began")
    expect(run.locator(".live")).to_be_hidden()
    assert status_reads, "the page never asked for the run's status"
    ui.shoot("run-unknown")

    ui.follow(notice.get_by_role("link", name="sync history"))
    expect(page).to_have_url(f"{ui.base_url}/ui/sync/runs")


def test_the_sync_page_shows_a_running_run_and_then_its_result(
    ui: UI, atryum: LiveServer, sim_state: Any, sqlite_engine: sa.Engine
) -> None:
    """A slow ValidMind keeps the run visibly running; the Sync page follows it to the end."""
    page = ui.page
    _configure(sqlite_engine, sim_state)
    sim_state.set_faults(delay_seconds=4, endpoints=["agents"], times=1)
    ticket = atryum.ctx.coordinator.submit(trigger="manual", requested_by="test")
    wait_until(lambda: _status(sqlite_engine, ticket.run_id) == "running")

    ui.goto("/ui/sync")
    run = page.locator(".run")
    expect(run).to_have_attribute("data-status", "running")
    expect(run).to_have_attribute("data-run-id", ticket.run_id)
    expect(run.locator(".run-headline")).to_have_text(
        "Running: fetching from ValidMind and applying the plan"
    )
    expect(run.locator(".live")).to_be_visible()
    ui.shoot("sync-running")

    expect(run).to_have_attribute("data-status", "succeeded")
    expect(page).to_have_url(f"{ui.base_url}/ui/sync")
    expect(page.locator(".run-summary")).to_have_text("1 record fetched from ValidMind: 1 created.")
    expect(run.locator(".live")).to_have_count(0)
    assert _status(sqlite_engine, ticket.run_id) == "succeeded"
