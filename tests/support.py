"""Test helpers shared by several test modules."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
import uvicorn

from atryum.app import create_app
from atryum.config import Config, parse_config
from atryum.context import AppContext
from atryum.db import migrate
from atryum.db.engine import make_engine
from atryum.gateway import audit
from atryum.gateway import store as gateway_store

ORG = "org-1"
SLUG = "ai-agent"


T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` in a thread of its own. Once a test in the process has opened the
    browser, Playwright's sync API marks the main thread's event loop as running between its
    calls, and asyncio.run refuses to start there."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main).result()


def make_config(**sections: Any) -> Config:
    """A config from sections; TestClient's `testserver` Host is served unless a test says."""
    server = sections.setdefault("server", {})
    server.setdefault("allowed_hosts", ["testserver"])
    return parse_config(sections, "(test)")


def engine_at(db_url: str, revision: str) -> sa.Engine:
    """An engine on `db_url` migrated up to `revision` only (a database an older Atryum left)."""
    from alembic import command

    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(migrate._alembic_config(conn), revision)
    return engine


def assert_histories_rebuild(engine: sa.Engine) -> int:
    """The event history of every invocation in the database rebuilds its final status
    (gateway spec §1, §7.4). The database fixtures run it after every test."""
    if not sa.inspect(engine).has_table("invocations"):
        return 0
    with engine.connect() as conn:
        ids = gateway_store.all_invocation_ids(conn)
        for inv_id in ids:
            inv = gateway_store.get_invocation(conn, inv_id)
            assert inv is not None
            events = gateway_store.list_events(conn, inv_id)
            assert audit.rebuild_status(events) == inv.status, (inv_id, inv.status, events)
    return len(ids)


def wait_until(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


#: Listening ports for test servers, below the kernel's ephemeral range (32768-60999): a port
#: from that range, freed while a process restarts on it (kill -9, then start), can be taken in
#: between as the source port of any outgoing connection of a parallel test.
_PORTS = range(20000, 32000)


def free_port() -> int:
    """A free port for a test server; random, so parallel workers rarely draw the same one."""
    while True:
        port = random.choice(_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class LiveServer:
    """Atryum served by uvicorn on a real port, in a background thread."""

    def __init__(self, ctx: AppContext, *, background: bool = False) -> None:
        self.ctx = ctx
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(ctx, background=background),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=20)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)
