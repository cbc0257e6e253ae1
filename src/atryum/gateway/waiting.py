"""Waiting for an invocation to leave a status (a human's decision, an executor's outcome).

A waiter subscribes to the hub before its first read, so no change slips between the two, and
re-reads on every wake-up, at the approval deadline (the read expires it lazily) and at least
every few seconds whatever the wake-ups do. Shared by the hook path's long poll and the MCP
proxy, which waits with the client's request open.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Collection

from atryum.db.types import utcnow
from atryum.gateway.gate_pool import on_gate
from atryum.gateway.hub import Hub
from atryum.gateway.models import PENDING, Invocation

# A waiter re-reads at least this often, whatever the wake-ups do: rarely when PostgreSQL
# NOTIFY delivers every replica's changes, often when another process could share a SQLite file.
RECHECK_NOTIFIED = 5.0
RECHECK_LOCAL = 1.0


async def wait_while(
    hub: Hub,
    read: Callable[[], Invocation],
    invocation_id: str,
    *,
    statuses: Collection[str] = (PENDING,),
    timeout: float | None = None,
    heartbeat: Callable[[], Awaitable[None]] | None = None,
    every: float = 10.0,
) -> Invocation:
    """Re-read the invocation (`read`, a blocking call) until its status is not in `statuses`
    or `timeout` s passed; `heartbeat` runs every `every` s meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = math.inf if timeout is None else loop.time() + timeout
    next_beat = loop.time() + every
    sub = hub.subscribe(wants=lambda c: c.invocation_id == invocation_id)  # before the read
    try:
        while True:
            inv = await on_gate(read)
            now = loop.time()
            left = deadline - now
            if inv.status not in statuses or left <= 0:
                return inv
            expires = inv.approval.expires_at if inv.approval else None
            if expires is not None and inv.status == PENDING:
                left = min(left, max((expires - utcnow()).total_seconds(), 0) + 0.01)
            pause = min(left, RECHECK_NOTIFIED if hub.via_database else RECHECK_LOCAL)
            if heartbeat is not None:
                pause = min(pause, max(next_beat - now, 0))
            await sub.wait_for(lambda c: c.invocation_id == invocation_id, pause)
            if heartbeat is not None and loop.time() >= next_beat:
                next_beat = loop.time() + every
                await heartbeat()
    finally:
        hub.unsubscribe(sub)
