"""Gateway changes from every process sharing the database, forwarded to the local hub.

PostgreSQL: `LISTEN`. The services `NOTIFY` inside the transaction that changes an invocation,
so the message goes out exactly when the change commits — on whichever replica made it.

SQLite shared by several workers (`follow_sqlite`): every change of an invocation writes its
event row in the same transaction, so the event table is the change feed. `PRAGMA data_version`
(answered from shared memory, no disk read) tells a worker whether any other connection has
committed since it last looked; only then does it read the events after the last one it saw.

After a (re)connect the hub gets a resync, so waiters re-read whatever they may have missed
while the listener was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import sqlalchemy as sa

from atryum.db.engine import sqlite_file
from atryum.gateway.hub import RESYNC, Change, Hub
from atryum.gateway.store import NOTIFY_CHANNEL

log = logging.getLogger("atryum.gateway")


def conninfo(engine: sa.Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _parse(payload: str) -> Change:
    try:
        data = json.loads(payload)
        return Change(str(data["id"]), data.get("status"))
    except (ValueError, KeyError, TypeError):
        return RESYNC


async def _deliver(
    source: Callable[[], AbstractAsyncContextManager[AsyncIterator[Change]]],
    errors: tuple[type[Exception], ...],
    lost: str,
    hub: Hub,
    connected: asyncio.Event,
) -> None:
    """Run until cancelled: every change `source` yields goes to `hub` (ours included, so the
    services leave delivery to it); after a failure in `errors`, reopen it with backoff."""
    backoff = 0.5
    while True:
        try:
            async with source() as changes:
                hub.via_database = True
                connected.set()
                hub.publish(RESYNC)
                backoff = 0.5
                try:
                    async for change in changes:
                        hub.publish(change)
                finally:
                    hub.via_database = False
                    connected.clear()
        except errors as exc:
            log.warning("gateway listener lost %s (%s); reconnecting", lost, type(exc).__name__)
            hub.publish(RESYNC)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


async def listen(engine: sa.Engine, hub: Hub, connected: asyncio.Event) -> None:
    """PostgreSQL: run until cancelled; reconnect with backoff after any connection failure."""
    import psycopg  # PostgreSQL only: an SQLite process never loads the driver

    @contextlib.asynccontextmanager
    async def notifications() -> AsyncIterator[AsyncIterator[Change]]:
        aconn = await psycopg.AsyncConnection.connect(conninfo(engine), autocommit=True)
        try:
            await aconn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            yield (_parse(note.payload) async for note in aconn.notifies())
        finally:
            await aconn.close()

    await _deliver(notifications, (psycopg.Error, OSError), "PostgreSQL", hub, connected)


#: How often a worker on a shared SQLite database looks for the others' commits.
FOLLOW_INTERVAL = 0.02


class EventFeed:
    """The invocation events committed after the last call, read from a SQLite file."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, timeout=5, check_same_thread=False)
        self._version = self._data_version()
        self._last = int(
            self._conn.execute("SELECT coalesce(max(n), 0) FROM invocation_events").fetchone()[0]
        )

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def changes(self) -> list[Change]:
        version = self._data_version()
        if version == self._version:
            return []
        self._version = version
        rows = self._conn.execute(
            "SELECT n, invocation_id, status FROM invocation_events WHERE n > ? ORDER BY n",
            (self._last,),
        ).fetchall()
        if rows:  # n only grows: AUTOINCREMENT, never reused, kept by VACUUM (0015)
            self._last = rows[-1][0]
        return [Change(invocation_id, status) for _, invocation_id, status in rows]

    def close(self) -> None:
        self._conn.close()


async def follow_sqlite(
    engine: sa.Engine, hub: Hub, connected: asyncio.Event, interval: float = FOLLOW_INTERVAL
) -> None:
    """SQLite shared by several workers: run until cancelled, polling the event feed."""
    path = sqlite_file(engine)
    assert path is not None, "processes share a SQLite file, never an in-memory database"

    @contextlib.asynccontextmanager
    async def events() -> AsyncIterator[AsyncIterator[Change]]:
        feed = await asyncio.to_thread(EventFeed, path)
        try:
            yield _poll(feed, interval)
        finally:
            feed.close()

    await _deliver(events, (sqlite3.Error,), "the SQLite file", hub, connected)


async def _poll(feed: EventFeed, interval: float) -> AsyncIterator[Change]:
    while True:
        for change in await asyncio.to_thread(feed.changes):
            yield change
        await asyncio.sleep(interval)
