"""The MCP proxy's state in one Atryum process: the upstream pool, client sessions, calls in
flight (for `notifications/cancelled`) and calls finishing in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from atryum import heap
from atryum.mcp import service
from atryum.mcp.models import CONNECTED, ERROR, Server

if TYPE_CHECKING:
    from atryum.mcp.pool import Pool

log = logging.getLogger("atryum.mcp")

MAX_SESSIONS = 10_000
# How long a server lookup is reused. Changes made through this process apply at once; one
# made on another replica within this time.
LOOKUP_TTL = 1.0


@dataclass
class ClientSessionInfo:
    """What `initialize` told us about a client (kept in memory: a session Atryum no longer
    knows, e.g. after a restart, is served leniently as a plain exchange)."""

    protocol_version: str
    client_name: str | None
    client_version: str | None


@dataclass
class McpRuntime:
    engine: Any
    _pool: Pool | None = None
    sessions: OrderedDict[str, ClientSessionInfo] = field(default_factory=OrderedDict)
    inflight: dict[tuple[str, str], asyncio.Task[Any]] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _lookups: dict[str, tuple[float, Server | None]] = field(default_factory=dict)

    @property
    def pool(self) -> Pool:
        """The upstream connections, made on first use: a process whose clients never use the
        proxy never imports the MCP SDK (over a second of every start-up)."""
        if self._pool is None:
            from atryum.mcp.pool import Pool

            heap.resettle()  # the SDK just loaded: its objects are long-lived
            self._pool = Pool()
            self._pool.on_status = self.status_changed
        return self._pool

    async def lookup(self, name: str) -> Server | str:
        """The enabled server with this name or slug, or why there is none (safe to show)."""
        server = await self.find(name)
        if server is None:
            return f"there is no MCP server {name!r} in this Atryum (see /api/v1/servers)"
        if not server.enabled:
            return f"the MCP server {name!r} is disabled in this Atryum"
        return server

    async def find(self, name: str) -> Server | None:
        """The server with this name or slug (cached for `LOOKUP_TTL` s)."""
        now = time.monotonic()
        hit = self._lookups.get(name)
        if hit is not None and now - hit[0] < LOOKUP_TTL:
            return hit[1]
        server = await run_in_threadpool(service.find_server, self.engine, name=name)
        if len(self._lookups) > MAX_SESSIONS:
            self._lookups.clear()
        self._lookups[name] = (now, server)
        return server

    def forget_lookups(self) -> None:
        """After a change to the servers: the next lookups read the database."""
        self._lookups.clear()

    def remember(self, session_id: str, info: ClientSessionInfo) -> None:
        self.sessions[session_id] = info
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)

    def status_changed(self, server: Server, error: str | None) -> None:
        """The pool's report of a connection attempt, written in the background."""

        async def write() -> None:
            with contextlib.suppress(Exception):
                await run_in_threadpool(
                    service.record_status,
                    self.engine,
                    server_id=server.id,
                    status=ERROR if error else CONNECTED,
                    error=error,
                )

        task = asyncio.get_running_loop().create_task(write())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._pool is not None:
            await self._pool.close()


def start(ctx: Any) -> McpRuntime:
    rt = McpRuntime(engine=ctx.engine)
    added = service.bootstrap(ctx.engine, upstreams=ctx.config.upstreams)
    if added:
        log.info("mcp servers seeded from [[upstreams]] count=%d", added)
    return rt


async def mcp_runtime(request: Request) -> McpRuntime:
    rt: McpRuntime = request.app.state.mcp
    return rt


Mcp = Depends(mcp_runtime)
