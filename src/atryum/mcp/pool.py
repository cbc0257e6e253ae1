"""Upstream connections: one long-lived MCP client session per server, shared by every caller.

stdio: one process per server, started on first use; the SDK's session matches JSON-RPC ids, so
concurrent calls interleave on the one pipe. When the process dies its session ends, waiting
calls fail with a clear error, and the supervisor starts it again with growing backoff. Its
stderr goes to Atryum's log (secrets masked), never to a client.

http: streamable HTTP; the upstream's session id is kept, and when the upstream forgets it
(404) the session is initialised again once and the request retried.

Every request is bounded by the server's `timeout_seconds`; starting one (a process, its
imports, the handshake) by that or `STARTUP_MIN` seconds, whichever is longer, since an
interpreter or `npx` start on a busy machine takes seconds. Every server has its own
supervisor task: a slow or dead server never blocks another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version as _version
from typing import Any, TextIO

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, INVALID_REQUEST, REQUEST_TIMEOUT
from pydantic import BaseModel, ConfigDict

from atryum.mcp.errors import UpstreamError, UpstreamFailure, UpstreamTimeout
from atryum.mcp.keepalive import KeepAliveTransport
from atryum.mcp.models import HTTP, Server, redact

log = logging.getLogger("atryum.mcp")

CLIENT_INFO = types.Implementation(name="atryum", version=_version("atryum"))


class _Raw(BaseModel):
    """A result kept as the upstream sent it (relayed, not re-shaped)."""

    model_config = ConfigDict(extra="allow")


BACKOFF_START, BACKOFF_MAX = 0.2, 30.0
# A connection that stayed up this long resets the backoff.
STABLE_AFTER = 10.0
STARTUP_MIN = 30.0


def _stderr_pipe(server: Server) -> TextIO:
    """A pipe for the child's stderr; a thread logs each line (secrets masked)."""
    read_fd, write_fd = os.pipe()

    def pump() -> None:
        with os.fdopen(read_fd, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                log.info(
                    "upstream stderr server=%s line=%s",
                    server.name,
                    redact(line.rstrip(), server.secrets()),
                )

    threading.Thread(target=pump, name=f"mcp-stderr-{server.name}", daemon=True).start()
    return os.fdopen(write_fd, "w")


#: The upstream's notifications about the server as a whole: every client of it is told.
#: (Progress and log messages belong to one request of one client and are not broadcast.)
BROADCAST = (
    types.ToolListChangedNotification,
    types.ResourceListChangedNotification,
    types.PromptListChangedNotification,
    types.ResourceUpdatedNotification,
)
LISTENER_BACKLOG = 100  # notifications a slow client may fall behind by before it misses some


class Upstream:
    """One server's shared session and the task that keeps it alive."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._session: ClientSession | None = None
        self._attempt: asyncio.Future[ClientSession] | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.restarts = 0
        self._expired = False
        self.last_error: str | None = None
        self.on_status: Callable[[Server, str | None], Any] | None = None
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()

    # -- notifications to the clients' GET streams ------------------------------------------

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(LISTENER_BACKLOG)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(queue)

    async def _on_message(self, message: Any) -> None:
        if not isinstance(message, BROADCAST):
            return
        note = {
            "jsonrpc": "2.0",
            **message.model_dump(by_alias=True, mode="json", exclude_none=True),
        }
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(note)

    # -- supervisor -------------------------------------------------------------------------

    def _clean(self, exc: BaseException) -> str:
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # the first real cause
            exc = exc.exceptions[0]
        text = str(exc) or type(exc).__name__
        return redact(text, self.server.secrets())

    async def _watch_expiry(self, response: httpx2.Response) -> None:
        """A 404 to a request that carried our session id: the upstream forgot the session."""
        if response.status_code == 404 and "mcp-session-id" in response.request.headers:
            self._expired = True

    def _mark_lost(self) -> None:
        """The connection is gone: callers from now on wait for the next one."""
        self._lost.set()
        if self._attempt is not None and self._attempt.done():
            self._attempt = asyncio.get_running_loop().create_future()

    async def _supervise(self) -> None:
        backoff = BACKOFF_START
        loop = asyncio.get_running_loop()
        while not self._closing:
            attempt = self._attempt
            assert attempt is not None
            started = loop.time()
            try:
                async with self._connect() as session:
                    self._session = session
                    self.last_error = None
                    if not attempt.done():
                        attempt.set_result(session)
                    self._report(None)
                    await self._lost.wait()
            except Exception as exc:  # the upstream is down; callers get the reason
                self.last_error = self._clean(exc)
                log.warning(
                    "upstream connection failed server=%s error=%s",
                    self.server.name,
                    self.last_error,
                )
                if not attempt.done():
                    attempt.set_exception(
                        UpstreamFailure(
                            f"MCP server {self.server.name!r} is not reachable: {self.last_error}"
                        )
                    )
                    attempt.exception()  # retrieved: no "never retrieved" warning
                self._report(self.last_error)
            finally:
                self._session = None
            if self._closing:
                break
            self.restarts += 1
            if loop.time() - started > STABLE_AFTER:
                backoff = BACKOFF_START
            if self._attempt is attempt:  # callers arriving during the backoff wait for the next
                self._attempt = loop.create_future()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            self._lost = asyncio.Event()

    def _report(self, error: str | None) -> None:
        if self.on_status is not None:
            with contextlib.suppress(Exception):
                self.on_status(self.server, error)

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[ClientSession]:
        server = self.server
        async with contextlib.AsyncExitStack() as stack:
            if server.mode == HTTP:
                headers = dict(server.headers)
                if server.auth_token:
                    headers["Authorization"] = f"Bearer {server.auth_token}"
                # The SDK's client settings (create_mcp_http_client), on a transport that keeps
                # the connection across calls (atryum.mcp.keepalive).
                client = httpx2.AsyncClient(
                    headers=headers,
                    timeout=httpx2.Timeout(server.timeout_seconds, read=300),
                    transport=KeepAliveTransport(),
                )
                client.event_hooks["response"] = [self._watch_expiry]
                await stack.enter_async_context(client)
                read, write = await stack.enter_async_context(
                    streamable_http_client(server.base_url, http_client=client)
                )
            else:
                errlog = _stderr_pipe(server)
                try:
                    params = StdioServerParameters(
                        command=server.command, args=server.args, env=server.env or None
                    )
                    read, write = await stack.enter_async_context(stdio_client(params, errlog))
                finally:
                    errlog.close()  # the child holds its own copy
            # The session's reader ends when the process exits: that is when we restart it.
            inbox_send, inbox = anyio.create_memory_object_stream[Any](0)

            async def forward() -> None:
                async with inbox_send:
                    async for message in read:
                        await inbox_send.send(message)
                self._mark_lost()

            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            tg.start_soon(forward)
            session = await stack.enter_async_context(
                ClientSession(  # timeouts per request
                    inbox, write, client_info=CLIENT_INFO, message_handler=self._on_message
                )
            )
            with anyio.fail_after(self.startup_timeout):
                await session.initialize()
            yield session

    @property
    def startup_timeout(self) -> float:
        return max(float(self.server.timeout_seconds), STARTUP_MIN)

    # -- callers ----------------------------------------------------------------------------

    async def session(self) -> ClientSession:
        """The live session, starting the server (or waiting for its restart) if needed."""
        if self._session is not None and not self._lost.is_set():
            return self._session
        if self._task is None or self._task.done():
            self._attempt = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._supervise(), name=f"mcp-{self.server.name}")
        assert self._attempt is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._attempt), self.startup_timeout)
        except TimeoutError:
            raise UpstreamTimeout(
                f"MCP server {self.server.name!r} did not start within "
                f"{self.startup_timeout:.0f} s"
                + (f" (last error: {self.last_error})" if self.last_error else "")
            ) from None

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Send one request upstream and return its raw result."""
        for attempt in range(2):
            session = await self.session()
            self._expired = False
            try:
                return await self._send(session, method, params)
            except MCPError as exc:
                # only a refusal of the session is retried: the upstream did not run the request
                if self._expired and attempt == 0 and exc.error.code == INVALID_REQUEST:
                    log.info(
                        "upstream session expired server=%s; re-initialising", self.server.name
                    )
                    self._mark_lost()
                    continue
                raise self._failure(exc) from None
        raise AssertionError("unreachable")

    async def _send(
        self,
        session: ClientSession,
        method: str,
        params: dict[str, Any] | None,
    ) -> dict[str, Any]:
        request = types.Request[dict[str, Any] | None, str](method=method, params=params)
        timeout = self.server.timeout_seconds
        try:
            with anyio.fail_after(timeout + 1):  # the SDK's own timeout answers first
                result = await session.send_request(
                    request, _Raw, request_read_timeout_seconds=timeout
                )
        except TimeoutError:
            raise MCPError(REQUEST_TIMEOUT, "timed out") from None
        return dict(result.model_extra or {})

    def _failure(self, exc: MCPError) -> UpstreamFailure:
        name = self.server.name
        if exc.error.code == REQUEST_TIMEOUT:
            return UpstreamTimeout(
                f"MCP server {name!r} did not answer within {self.server.timeout_seconds} s"
            )
        if exc.error.code == CONNECTION_CLOSED:
            self._mark_lost()
            return UpstreamFailure(
                f"MCP server {name!r} closed the connection during the request "
                "(the server process exited or the connection broke); it is being restarted"
            )
        error = exc.error.model_copy(
            update={"message": redact(exc.error.message, self.server.secrets())}
        )
        return UpstreamError(name, error)

    async def close(self) -> None:
        self._closing = True
        self._lost.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class Pool:
    """The upstreams of one Atryum process, by server id."""

    def __init__(self) -> None:
        self._upstreams: dict[str, Upstream] = {}
        self.on_status: Callable[[Server, str | None], Any] | None = None

    def get(self, server: Server) -> Upstream:
        """The server's upstream; a changed connection setting replaces it."""
        up = self._upstreams.get(server.id)
        if up is not None and up.server.connection_key() == server.connection_key():
            up.server = server  # e.g. a new timeout applies at once
            return up
        if up is not None:
            asyncio.get_running_loop().create_task(up.close())
        up = self._upstreams[server.id] = Upstream(server)
        up.on_status = self.on_status
        return up

    async def drop(self, server_id: str) -> None:
        up = self._upstreams.pop(server_id, None)
        if up is not None:
            await up.close()

    async def close(self) -> None:
        ups, self._upstreams = list(self._upstreams.values()), {}
        await asyncio.gather(*(u.close() for u in ups))
