"""Transactions of the gateway.

SQLite lets one writer in at a time, and every Atryum transaction on SQLite starts with
`BEGIN IMMEDIATE` (it takes the write lock up front). Connections that find the lock taken wait
in SQLite's busy handler, which sleeps in growing steps (1, 2, 5, 10 … 100 ms): under hook-path
load that turns a 1 ms wait into tens of milliseconds. Queueing the gateway's transactions first
hands the database over as soon as it is free: on an in-process lock between the threads of one
process, then on a file lock (`flock`, which wakes the next waiter when it is released) between
the processes of `atryum run --workers` sharing the file. PostgreSQL needs none of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from collections.abc import Iterator

import sqlalchemy as sa

from atryum.db.engine import sqlite_file


class _Queue:
    """The gateway's writers of one SQLite database, one at a time."""

    def __init__(self, path: str | None) -> None:
        self.threads = threading.Lock()
        self.file: int | None = None
        if path is not None:
            self.file = os.open(f"{path}-gate.lock", os.O_RDWR | os.O_CREAT, 0o600)
            weakref.finalize(self, os.close, self.file)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self.threads:
            if self.file is None:
                yield
                return
            fcntl.flock(self.file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.file, fcntl.LOCK_UN)


_queues: weakref.WeakKeyDictionary[sa.Engine, _Queue] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def _queue_for(engine: sa.Engine) -> _Queue:
    with _guard:
        queue = _queues.get(engine)
        if queue is None:
            queue = _queues[engine] = _Queue(sqlite_file(engine))
        return queue


@contextlib.contextmanager
def begin(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()`, queued on SQLite."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with _queue_for(engine).turn(), engine.begin() as conn:
        yield conn
