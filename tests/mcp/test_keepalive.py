"""HTTP upstreams: one connection for many calls, and a response stream that does not end is
still closed at once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx2
import pytest

from atryum.mcp import keepalive
from atryum.mcp.keepalive import KeepAliveTransport
from tests.gateway.live import Api
from tests.mcp.conftest import HttpUpstream
from tests.mcp.test_proxy import Raw, endpoint, register
from tests.support import LiveServer, run_async


class CountingRelay:
    """A TCP relay in front of a port that counts the connections made through it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
        for s in self.sockets:
            s.close()


@pytest.fixture
def relay(http_upstream: HttpUpstream) -> Iterator[CountingRelay]:
    r = CountingRelay(http_upstream.port)
    yield r
    r.close()


def test_calls_to_an_http_upstream_share_one_connection(
    atryum: Callable[..., LiveServer], relay: CountingRelay
) -> None:
    """The upstream answers in SSE; before, each call opened a connection of its own."""
    url = f"http://127.0.0.1:{relay.port}/mcp"
    server = atryum(
        [{"name": "calc", "mode": "http", "base_url": url}], policy={"provider": "always_approve"}
    )
    with Api(server.url) as api:
        register(api)
    raw = Raw(endpoint(server))
    for i in range(10):
        answer = raw.call(i, "tools/call", {"name": "add", "arguments": {"a": i, "b": 1}})
        assert answer["result"]["structuredContent"] == {"result": i + 1.0}
    # the requests and notifications on one (a second while the first is still being read, as
    # when the session starts), the server's event stream on another; before, one per call
    assert relay.accepted <= 3, relay.accepted


class EndlessBody(httpx2.AsyncByteStream):
    """An answer, then a stream that stays open (`trickle`: and keeps sending) until closed."""

    CHUNK = b": keep-alive" + b"." * 1000 + b"\n"

    def __init__(self, *, trickle: bool) -> None:
        self.trickle = trickle
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'event: message\ndata: {"answer": 1}\n\n'
        while True:
            if self.trickle:
                self.sent += len(self.CHUNK)
                yield self.CHUNK
                await asyncio.sleep(0)
            else:
                await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


def _close_after_the_answer(body: EndlessBody) -> float:
    """Read the first chunk, close the response; the seconds the close took."""
    inner = httpx2.MockTransport(lambda request: httpx2.Response(200, stream=body))

    async def go() -> float:
        async with httpx2.AsyncClient(transport=KeepAliveTransport(inner)) as client:
            async with client.stream("POST", "http://upstream/mcp") as response:
                first = await response.aiter_raw().__anext__()
                assert first.startswith(b"event: message")
                started = time.monotonic()
            return time.monotonic() - started

    return run_async(go())


def test_a_silent_stream_left_open_is_closed_after_the_drain_time() -> None:
    body = EndlessBody(trickle=False)
    assert _close_after_the_answer(body) < keepalive.DRAIN_SECONDS + 1.0
    assert body.closed


def test_a_stream_that_keeps_sending_is_closed_after_the_drain_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keepalive, "DRAIN_SECONDS", 60.0)  # only the byte bound can end it soon
    body = EndlessBody(trickle=True)
    assert _close_after_the_answer(body) < 10.0
    assert body.closed
    assert body.sent <= keepalive.DRAIN_BYTES + 2 * len(EndlessBody.CHUNK)
