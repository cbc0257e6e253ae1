"""In-process fan-out of invocation changes to waiting requests (long polls, SSE streams).

Changes are published from worker threads (the sync service) and consumed by asyncio tasks, so
delivery goes through `loop.call_soon_threadsafe`. On PostgreSQL the changes of every replica
arrive through `LISTEN/NOTIFY` (see `listener.py`); on SQLite they are published locally after
each commit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_QUEUE_MAX = 1000


@dataclass(frozen=True)
class Change:
    invocation_id: str | None  # None: "anything may have changed, re-read" (after a reconnect)
    status: str | None = None


RESYNC = Change(None, None)


class Subscription:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, wants: Callable[[Change], bool] | None = None
    ) -> None:
        self.loop = loop
        self.wants = wants
        self.queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=_QUEUE_MAX)

    def _put(self, change: Change) -> None:
        if self.queue.full():  # a slow consumer: drop its backlog and tell it to re-read
            while not self.queue.empty():
                self.queue.get_nowait()
            change = RESYNC
        self.queue.put_nowait(change)

    async def next(self, timeout: float) -> Change | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout=max(timeout, 0))
        except TimeoutError:
            return None

    async def wait_for(self, wanted: Callable[[Change], bool], timeout: float) -> bool:
        """Wait until a wanted change (or a resync) arrives; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            change = await self.next(deadline - loop.time())
            if change is None:
                return False
            if change.invocation_id is None or wanted(change):
                return True


class Hub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()
        # True while a PostgreSQL listener delivers every change (ours included) from the database.
        self.via_database = False

    def subscribe(self, wants: Callable[[Change], bool] | None = None) -> Subscription:
        """A subscription to every change, or only to those `wants` accepts (and resyncs): the
        filter runs in the publishing thread, so an unwanted change never wakes the loop (a
        wake-up per committed call cost the hook path a sixth of its CPU)."""
        sub = Subscription(asyncio.get_running_loop(), wants)
        with self._lock:
            self._subs.add(sub)
        return sub

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subs)

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, change: Change) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            wanted = sub.wants is None or change.invocation_id is None or sub.wants(change)
            if not wanted:
                continue
            try:
                sub.loop.call_soon_threadsafe(sub._put, change)
            except RuntimeError:  # its event loop has closed
                self.unsubscribe(sub)

    def committed(self, changes: Iterable[Change]) -> None:
        """Called by the services after a commit: deliver locally unless the database will."""
        if self.via_database:
            return
        for change in changes:
            self.publish(change)
