"""The sync coordinator: one sync at a time, triggers coalesced, runs detached from callers.

One worker thread per process executes runs; across processes and replicas the sync lock
(`atryum.sync.lock`) serialises them. A trigger that arrives while a run is queued is merged into
that queued run, so a burst of triggers costs at most one follow-up run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from atryum.config import Config
from atryum.db.types import utcnow
from atryum.sync import run_store, runs
from atryum.sync.lock import LockTimeout, sync_lock
from atryum.sync.service import (
    SETTINGS_CHANGED,
    SKIPPED,
    ClientFactory,
    Progress,
    RunRequest,
    execute_run,
    start_run,
)
from atryum.sync.settings import get_settings

log = logging.getLogger("atryum.sync")

INTERRUPTED = (
    "interrupted: the Atryum process running this sync stopped before it finished; "
    "the registry is as it was before the run"
)


@dataclass
class Ticket:
    run_id: str
    trigger: str
    requested_by: str
    dry_run: bool
    allow_removals: bool
    done: threading.Event = field(default_factory=threading.Event)
    coalesced: int = 0
    triggers: list[str] = field(default_factory=list)
    progress: Progress | None = None
    _on_done: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self) -> None:
        """The run ended (written or crashed): set `done` and tell the async waiters."""
        with self._lock:
            self.done.set()
            callbacks, self._on_done = self._on_done, []
        for callback in callbacks:
            callback()

    async def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the run without holding a thread (issue 14 row 5: long
        waits never take a worker thread); True if it ended."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not ended.done():
                ended.set_result(None)

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(resolve)

        with self._lock:
            if self.done.is_set():
                return True
            self._on_done.append(wake)
        try:
            await asyncio.wait_for(ended, timeout)
        except TimeoutError:
            with self._lock:
                if wake in self._on_done:
                    self._on_done.remove(wake)
        return self.done.is_set()

    def request(self) -> RunRequest:
        return RunRequest(
            run_id=self.run_id,
            trigger=self.trigger,
            requested_by=self.requested_by,
            dry_run=self.dry_run,
            allow_removals=self.allow_removals,
            triggers=tuple(self.triggers or [self.trigger]),
            progress=self.progress,
        )

    def queued_view(self) -> dict[str, Any]:
        """What the API shows for a run that has not started yet."""
        return {
            "id": self.run_id,
            "trigger": self.trigger,
            "requested_by": self.requested_by,
            "dry_run": self.dry_run,
            "allow_removals": self.allow_removals,
            "triggers": list(self.triggers or [self.trigger]),
            "status": "queued",
        }


class SyncCoordinator:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        config: Config,
        client_factory: ClientFactory,
        lock_timeout: float = 600.0,
    ) -> None:
        self.engine = engine
        self.config = config
        self.client_factory = client_factory
        self.lock_timeout = lock_timeout
        self._cond = threading.Condition()
        self._queue: list[Ticket] = []
        self._current: Ticket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._debounce: threading.Timer | None = None
        self._quiet_until = 0.0  # monotonic time before which triggers wait for the window

    # -- triggers ---------------------------------------------------------------------------
    def submit(
        self,
        *,
        trigger: str,
        requested_by: str = "",
        dry_run: bool = False,
        allow_removals: bool = False,
    ) -> Ticket:
        with self._cond:
            for ticket in self._queue:
                if ticket.dry_run == dry_run:
                    ticket.allow_removals = ticket.allow_removals or allow_removals
                    ticket.coalesced += 1
                    ticket.triggers.append(trigger)
                    return ticket
            ticket = Ticket(str(uuid.uuid4()), trigger, requested_by, dry_run, allow_removals)
            ticket.triggers.append(trigger)
            self._queue.append(ticket)
            self._cond.notify_all()
            return ticket

    def submit_debounced(
        self,
        *,
        trigger: str,
        requested_by: str,
        delay: float,
        on_submit: Callable[[Ticket], None],
    ) -> None:
        """Leading-edge debounce: the first call of a quiet period submits at once; calls within
        `delay` seconds of the last submission wait for the end of that window and then submit
        once (merging into a queued run, so a burst costs at most one follow-up run)."""
        with self._cond:
            if self._stopping.is_set():
                return
            now = time.monotonic()
            leading = self._debounce is None and now >= self._quiet_until
            if leading:
                self._quiet_until = now + delay
            elif self._debounce is None:
                timer = threading.Timer(
                    self._quiet_until - now,
                    self._fire_debounced,
                    args=(trigger, requested_by, delay, on_submit),
                )
                timer.daemon = True
                self._debounce = timer
                timer.start()
        if leading:
            self._submit_then(trigger, requested_by, on_submit)

    def _fire_debounced(
        self, trigger: str, requested_by: str, delay: float, on_submit: Callable[[Ticket], None]
    ) -> None:
        with self._cond:
            self._debounce = None
            self._quiet_until = time.monotonic() + delay
        self._submit_then(trigger, requested_by, on_submit)

    def _submit_then(
        self, trigger: str, requested_by: str, on_submit: Callable[[Ticket], None]
    ) -> None:
        try:
            on_submit(self.submit(trigger=trigger, requested_by=requested_by))
        except Exception:  # a timer thread has nobody to report to but the log
            log.exception("debounced sync trigger failed")

    def pending(self, run_id: str) -> Ticket | None:
        with self._cond:
            return next((t for t in self._queue if t.run_id == run_id), None)

    def unwritten_view(self, run_id: str) -> dict[str, Any] | None:
        """A run this process knows about whose row is not in the database yet."""
        with self._cond:
            queued = next((t for t in self._queue if t.run_id == run_id), None)
            if queued is not None:
                return queued.queued_view()
            if self._current is not None and self._current.run_id == run_id:
                return {**self._current.queued_view(), "status": "running"}
        return None

    def run_blocking(self, **kwargs: Any) -> dict[str, Any]:
        """Execute one run in the calling thread (the CLI's `atryum sync`)."""
        ticket = Ticket(
            str(uuid.uuid4()),
            kwargs.get("trigger", "manual"),
            kwargs.get("requested_by", ""),
            kwargs.get("dry_run", False),
            kwargs.get("allow_removals", False),
            progress=kwargs.get("progress"),
        )
        return self._execute(ticket)

    # -- lifecycle --------------------------------------------------------------------------
    def recover(self) -> None:
        """Mark runs a dead process left `running` as failed, unless a live one holds the lock."""
        try:
            with sync_lock(self.engine, timeout=0), self.engine.begin() as conn:
                run_store.fail_unfinished(conn, INTERRUPTED, utcnow())
        except LockTimeout:
            pass  # another process is syncing; it cleans up when it takes the lock next

    def start(self, *, schedule: bool = True) -> None:
        self.recover()
        self._threads = [threading.Thread(target=self._work, name="atryum-sync", daemon=True)]
        if schedule:
            self._threads.append(
                threading.Thread(target=self._schedule, name="atryum-sync-schedule", daemon=True)
            )
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        with self._cond:
            if self._debounce is not None:
                self._debounce.cancel()
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)

    def sync_configured(self) -> bool:
        if not self.config.backend.enabled:
            return False
        try:
            return get_settings(self.engine, defaults=self.config.sync).configured
        except sa.exc.SQLAlchemyError:
            return False

    # -- internals --------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping.is_set():
                    self._cond.wait()
                if self._stopping.is_set():
                    return
                ticket = self._current = self._queue.pop(0)
            try:
                run = self._execute(ticket)
                if run["error"] == SETTINGS_CHANGED and not ticket.dry_run:
                    # Normally the settings change queued this already; then it merges into it.
                    self.submit(trigger="settings", requested_by="settings")
            except Exception:  # the worker must survive anything a run throws
                log.exception("sync run %s crashed", ticket.run_id)
            finally:
                with self._cond:
                    self._current = None
                ticket.finish()

    def _execute(self, ticket: Ticket) -> dict[str, Any]:
        request = ticket.request()
        try:
            with sync_lock(self.engine, timeout=self.lock_timeout):
                with self.engine.begin() as conn:
                    run_store.fail_unfinished(conn, INTERRUPTED, utcnow())
                start_run(self.engine, request)
                return execute_run(
                    self.engine,
                    request=request,
                    client_factory=self.client_factory,
                    sync_defaults=self.config.sync,
                )
        except LockTimeout as exc:
            now = utcnow()
            with self.engine.begin() as conn:
                run_store.insert_run(
                    conn,
                    {
                        **ticket.queued_view(),
                        "status": SKIPPED,
                        "started_at": now,
                        "finished_at": now,
                        "error": f"skipped: {exc}",
                        "warnings": [],
                    },
                )
            return runs.get_run(self.engine, run_id=ticket.run_id)

    def _schedule(self) -> None:
        while not self._stopping.is_set():
            try:
                interval = get_settings(self.engine, defaults=self.config.sync).interval_seconds
            except sa.exc.SQLAlchemyError:
                interval = self.config.sync.interval_seconds
            if self._stopping.wait(interval * random.uniform(0.9, 1.1)):
                return
            if self.sync_configured():
                self.submit(trigger="schedule", requested_by="scheduler")
