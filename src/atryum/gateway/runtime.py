"""The gateway's background work for one app: change hub, PostgreSQL listener, expiry sweeper.

`start(ctx)` / `stop(ctx)` run in the app's lifespan (the gateway router's own lifespan calls
them, so including the router is all an app needs). Start is reference-counted per context.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from atryum.db.engine import is_postgres
from atryum.db.types import utcnow
from atryum.gateway import approvals, metrics, store
from atryum.gateway.hub import Hub
from atryum.gateway.listener import follow_sqlite, listen
from atryum.gateway.models import PENDING
from atryum.gateway.retention import purge_finished
from atryum.gateway.settings import GatewayDefaults, defaults_from
from atryum.judge.judge import Judge

log = logging.getLogger("atryum.gateway")
T = TypeVar("T")


@dataclass
class GatewayRuntime:
    ctx: Any
    defaults: GatewayDefaults
    judge: Judge
    hub: Hub = field(default_factory=Hub)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    users: int = 0


_RUNTIMES: dict[int, GatewayRuntime] = {}
#: How long `stop` waits for the cancelled background tasks.
STOP_TIMEOUT = 10.0


def runtime_for(ctx: Any) -> GatewayRuntime:
    """The context's runtime; a passive one (hub only, no tasks) if `start` was not called."""
    rt = _RUNTIMES.get(id(ctx))
    if rt is None or rt.ctx is not ctx:
        rt = _RUNTIMES[id(ctx)] = GatewayRuntime(
            ctx=ctx, defaults=defaults_from(ctx.config), judge=Judge(ctx.config)
        )
    return rt


async def start(ctx: Any) -> GatewayRuntime:
    rt = runtime_for(ctx)
    rt.users += 1
    if rt.users > 1:
        return rt
    engine = ctx.engine
    metrics.track(engine)
    follow = listen if is_postgres(engine) else follow_sqlite if ctx.shared else None
    if follow is not None:
        rt.tasks.append(asyncio.create_task(follow(engine, rt.hub, rt.connected)))
        try:  # wait briefly, so that requests served right after start-up get wake-ups
            await asyncio.wait_for(rt.connected.wait(), timeout=5)
        except TimeoutError:
            log.warning("gateway listener not connected yet; waiters fall back to re-reading")
    rt.tasks.append(asyncio.create_task(_sweep(rt)))
    if ctx.config.retention.invocations_days > 0:
        rt.tasks.append(asyncio.create_task(_retain(rt)))
    return rt


async def stop(ctx: Any) -> None:
    rt = _RUNTIMES.get(id(ctx))
    if rt is None or rt.ctx is not ctx:
        return
    rt.users -= 1
    if rt.users > 0:
        return
    for task in rt.tasks:
        task.cancel()
    # Bounded: a background task that does not end when cancelled must not hang the shutdown.
    _, stuck = await asyncio.wait(rt.tasks, timeout=STOP_TIMEOUT) if rt.tasks else (set(), set())
    for task in stuck:
        log.warning("gateway background task did not stop in time task=%s", task.get_name())
    rt.tasks.clear()
    metrics.untrack(ctx.engine)
    rt.judge.close()
    _RUNTIMES.pop(id(ctx), None)


async def _finish_in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` in the thread pool; if cancelled, wait for the thread before re-raising, so that
    `stop` never returns while a thread still holds one of the engine's connections."""
    job = asyncio.ensure_future(run_in_threadpool(fn, *args, **kwargs))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await job
        raise


def _next_expiry(rt: GatewayRuntime) -> datetime | None:
    with rt.ctx.engine.connect() as conn:
        return store.next_expiry(conn)


async def _retain(rt: GatewayRuntime) -> None:
    """Delete finished invocations past `[retention] invocations_days`, now and then hourly."""
    retention = rt.ctx.config.retention
    while True:
        try:
            deleted = await _finish_in_thread(
                purge_finished, rt.ctx.engine, days=retention.invocations_days
            )
            if deleted:
                log.info("retention deleted finished invocations count=%d", deleted)
        except Exception:  # the sweep must outlive database hiccups
            log.exception("retention sweep failed; retrying")
        await asyncio.sleep(retention.sweep_interval_seconds)


async def _sweep(rt: GatewayRuntime) -> None:
    """Expire overdue pending calls; sleeps until the next deadline or a new pending call."""
    interval = rt.defaults.sweep_interval_seconds
    sub = rt.hub.subscribe(wants=lambda c: c.status == PENDING)
    try:
        while True:
            wait = interval
            try:
                await _finish_in_thread(approvals.expire_overdue, rt.ctx.engine, hub=rt.hub)
                nxt = await _finish_in_thread(_next_expiry, rt)
                if nxt is not None:
                    wait = min(interval, max((nxt - utcnow()).total_seconds(), 0) + 0.01)
            except Exception:  # the sweeper must outlive database hiccups
                log.exception("approval expiry sweep failed; retrying")
            await sub.wait_for(lambda c: c.status == PENDING, timeout=wait)
    finally:
        rt.hub.unsubscribe(sub)
