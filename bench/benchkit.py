"""What the benchmarks share: a scratch database for one run, a free local port, open-loop load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

from atryum.config import normalize_database_url

PG_URL = os.environ.get("ATRYUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def scratch_database(dialect: str, workdir: Path | None = None) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in `workdir` (a new temporary directory if
    None), or a fresh schema on PG_URL, dropped on exit."""
    if dialect == "sqlite":
        workdir = workdir or Path(tempfile.mkdtemp(prefix="atryum-bench-"))
        yield f"sqlite:///{workdir / 'atryum.db'}"
        return
    url = normalize_database_url(PG_URL)
    admin = sa.create_engine(url)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:  # pg_trgm outside the schema: dropping it would drop the extension
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


async def open_loop(
    one: Callable[[], Awaitable[bool]], rate: int, duration: float
) -> tuple[list[float], int, float]:
    """Start `one` at `rate` per second for `duration` s, on schedule whatever the answers take
    (open loop: a slow server is not given a slower client). Returns (latencies in ms from the
    scheduled start of the good answers, errors, wall seconds)."""
    latencies: list[float] = []
    errors = 0

    async def timed(scheduled: float) -> None:
        nonlocal errors
        try:
            ok = await one()
        except Exception:
            ok = False
        if ok:
            latencies.append((time.perf_counter() - scheduled) * 1000)
        else:
            errors += 1

    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed(scheduled)))
    await asyncio.gather(*tasks)
    return latencies, errors, time.perf_counter() - start


def _header_lines(headers: dict[str, str] | None) -> str:
    return "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())


class _Stale(Exception):
    """A kept-alive connection the server had closed before the request."""


class LeanClient:
    """A load generator's HTTP/1.1 client: keep-alive connections, requests written as bytes,
    answers read by Content-Length or chunked. On these 2 cores the load generator shares the
    machine with the server under test; httpx spends about 1.2 ms of CPU per request (past
    saturation, with hundreds of connections, 3 ms), as much as half of what it measures. This
    spends about a tenth of that, so the server gets the cores."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        parts = url.removeprefix("http://").split(":")
        self.host, self.port = parts[0], int(parts[1])
        self._head = f"Host: {self.host}:{self.port}\r\n{_header_lines(headers)}"
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """(status, body); see `fetch`."""
        status, _, answer = await self.fetch(method, path, body)
        return status, answer

    async def fetch(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body: by Content-Length or chunked); an error
        raises (the connection is dropped). A kept-alive connection the server closed meanwhile
        (its idle timeout) is retried once on a new one, as HTTP clients do: nothing of the
        request reached the server."""
        extra = _header_lines(headers)
        data = (
            f"{method} {path} HTTP/1.1\r\n{self._head}{extra}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        while self._idle:
            try:
                return await self._exchange(self._idle.pop(), data)
            except _Stale:
                continue
        conn = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(conn, data, fresh=True)

    async def _exchange(
        self,
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        data: bytes,
        fresh: bool = False,
    ) -> tuple[int, dict[str, str], bytes]:
        reader, writer = conn
        try:
            writer.write(data)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                partial = getattr(exc, "partial", b"")
                if not fresh and not partial:
                    raise _Stale from exc
                raise
            status = int(head[9:12])
            headers: dict[str, str] = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                answer = b""
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    answer += (await reader.readexactly(size + 2))[:-2]
                await reader.readuntil(b"\r\n")  # the end (no trailers are sent here)
            else:
                answer = await reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append(conn)
        return status, headers, answer

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()
