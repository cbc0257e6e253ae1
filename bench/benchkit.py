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
