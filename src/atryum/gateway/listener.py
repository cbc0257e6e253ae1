"""PostgreSQL `LISTEN` for gateway changes from every replica, forwarded to the local hub.

The services `NOTIFY` inside the transaction that changes an invocation, so the message goes out
exactly when the change commits — on whichever replica made it. After a (re)connect the hub gets
a resync, so waiters re-read whatever they may have missed while the listener was down.
"""

from __future__ import annotations

import asyncio
import json
import logging

import sqlalchemy as sa

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
