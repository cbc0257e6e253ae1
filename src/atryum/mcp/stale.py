"""MCP calls left `executing` by an Atryum process that died while it ran them (kill -9, a
crash, a lost host). A live process records every call's outcome by the server's timeout at
the latest (the pool gives up then), so a call still executing `timeout_seconds` + GRACE after
it was claimed has nobody running it: it is recorded `failed`, outcome unknown, instead of
staying open for ever. Every replica sweeps; the outcome is a compare-and-set, so one wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from atryum.db.tables import invocation_events, invocations, mcp_servers
from atryum.db.types import utcnow
from atryum.errors import Conflict
from atryum.gateway import service as gateway
from atryum.gateway.gate_pool import on_gate
from atryum.gateway.hub import Hub
from atryum.gateway.models import EXECUTING
from atryum.mcp.calls import EXECUTOR
from atryum.mcp.service import MAX_TIMEOUT

log = logging.getLogger("atryum.mcp")

GRACE = 10.0  # seconds past the server's timeout: clock skew between replicas, the last write
EVERY = 15.0  # seconds between sweeps
STOPPED = (
    "the Atryum process running this call stopped before the call ended; whether the tool ran "
    "is unknown"
)


def stale_executions(engine: sa.Engine, *, now: datetime) -> list[str]:
    """Ids of the calls the MCP proxy claimed that are past their server's timeout + GRACE."""
    claimed = sa.and_(
        invocation_events.c.invocation_id == invocations.c.id,
        invocation_events.c.status == EXECUTING,
        invocation_events.c.actor == EXECUTOR,
    )
    query = (
        sa.select(invocations.c.id, invocations.c.updated_at, mcp_servers.c.timeout_seconds)
        .join(invocation_events, claimed)
        .outerjoin(mcp_servers, mcp_servers.c.name == invocations.c.source)
        .where(invocations.c.status == EXECUTING)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        row.id
        for row in rows
        if row.updated_at + timedelta(seconds=(row.timeout_seconds or MAX_TIMEOUT) + GRACE) < now
    ]


def fail_stale(engine: sa.Engine, *, hub: Hub | None = None, now: datetime | None = None) -> int:
    """Record the stale calls `failed`; how many it recorded."""
    failed = 0
    for invocation_id in stale_executions(engine, now=now or utcnow()):
        with contextlib.suppress(Conflict):  # it ended meanwhile, or another replica won
            gateway.report_outcome(
                engine,
                invocation_id=invocation_id,
                execution_status="failed",
                error=STOPPED,
                hub=hub,
            )
            failed += 1
            log.warning(
                "mcp call left executing by a stopped process invocation_id=%s", invocation_id
            )
    return failed


async def sweep(engine: sa.Engine, hub: Hub) -> None:
    """The background task: sweep now (the calls of a process that died before this start) and
    every EVERY s."""
    while True:
        try:
            await on_gate(fail_stale, engine, hub=hub)
        except Exception:  # the sweep must survive a database hiccup
            log.exception("mcp stale-call sweep failed")
        await asyncio.sleep(EVERY)
