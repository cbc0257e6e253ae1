"""Connection reuse for HTTP upstreams.

The `mcp` SDK's streamable-HTTP client closes an SSE response as soon as it holds the answer
to its request, before reading the end of the stream. A response closed unread cannot give its
connection back to the pool, so every `tools/call` to an upstream that answers in SSE (the SDK's
own servers do, by default) opened a new TCP connection: a TLS handshake per call for a remote
server, and at 200 calls/s 12 000 sockets in TIME_WAIT at any time. Here, closing a response
first reads what is left of it, which the upstream has normally sent already (it ends the stream
with the answer), for at most DRAIN_SECONDS and DRAIN_BYTES; a stream still open after that is
closed as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import httpx2

DRAIN_SECONDS = 0.05
DRAIN_BYTES = 64 * 1024


class _Draining(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream) -> None:
        self._inner = inner
        self._parts: AsyncIterator[bytes] | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._parts = self._inner.__aiter__()
        async for part in self._parts:
            yield part

    async def aclose(self) -> None:
        """Read the rest (or, for a body nobody read, such as a 202 to a notification, all of
        it), then close."""
        try:
            await self._drain(self._parts or self._inner.__aiter__())
        finally:
            await self._inner.aclose()

    @staticmethod
    async def _drain(parts: AsyncIterator[bytes]) -> None:
        read = 0
        with anyio.move_on_after(DRAIN_SECONDS), contextlib.suppress(httpx2.HTTPError):
            async for part in parts:
                read += len(part)
                if read > DRAIN_BYTES:
                    return


class KeepAliveTransport(httpx2.AsyncBaseTransport):
    """`inner` (by default httpx2's own pooled transport), its responses drained on close."""

    def __init__(self, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _Draining(response.stream)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
