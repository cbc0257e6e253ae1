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
import json
import logging
import sqlite3

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


async def listen(engine: sa.Engine, hub: Hub, connected: asyncio.Event) -> None:
    """Run until cancelled; reconnect with backoff after any connection failure."""
    import psycopg  # PostgreSQL only: an SQLite process never loads the driver

    backoff = 0.5
    while True:
        try:
            aconn = await psycopg.AsyncConnection.connect(conninfo(engine), autocommit=True)
            try:
                await aconn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                hub.via_database = True
                connected.set()
                hub.publish(RESYNC)
                backoff = 0.5
                async for note in aconn.notifies():
                    hub.publish(_parse(note.payload))
            finally:
                hub.via_database = False
                connected.clear()
                await aconn.close()
        except asyncio.CancelledError:
            raise
        except (psycopg.Error, OSError) as exc:
            log.warning("gateway listener lost PostgreSQL (%s); reconnecting", type(exc).__name__)
            hub.publish(RESYNC)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


#: How often a worker on a shared SQLite database looks for the others' commits.
FOLLOW_INTERVAL = 0.02


class EventFeed:
    """The invocation events committed after the last call, read from a SQLite file."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, timeout=5, check_same_thread=False)
        self._version = self._data_version()
        self._last = self._max_rowid()

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _max_rowid(self) -> int:
        return int(
            self._conn.execute("SELECT coalesce(max(rowid), 0) FROM invocation_events").fetchone()[
                0
            ]
        )

    def changes(self) -> list[Change]:
        version = self._data_version()
        if version == self._version:
            return []
        self._version = version
        rows = self._conn.execute(
            "SELECT rowid, invocation_id, status FROM invocation_events WHERE rowid > ? "
            "ORDER BY rowid",
            (self._last,),
        ).fetchall()
        if rows:
            self._last = rows[-1][0]
        else:  # the newest events were deleted (retention): new ones may reuse their rowids
            self._last = min(self._last, self._max_rowid())
        return [Change(invocation_id, status) for _, invocation_id, status in rows]

    def close(self) -> None:
        self._conn.close()


async def follow_sqlite(
    engine: sa.Engine, hub: Hub, connected: asyncio.Event, interval: float = FOLLOW_INTERVAL
) -> None:
    """Run until cancelled: deliver every process's committed changes (ours included) to `hub`."""
    path = sqlite_file(engine)
    assert path is not None, "processes share a SQLite file, never an in-memory database"
    backoff = 0.5
    while True:
        try:
            feed = await asyncio.to_thread(EventFeed, path)
            try:
                hub.via_database = True
                connected.set()
                hub.publish(RESYNC)
                backoff = 0.5
                while True:
                    for change in await asyncio.to_thread(feed.changes):
                        hub.publish(change)
                    await asyncio.sleep(interval)
            finally:
                hub.via_database = False
                connected.clear()
                feed.close()
        except sqlite3.Error as exc:
            log.warning("gateway listener lost the SQLite file (%s); reopening", exc)
            hub.publish(RESYNC)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
