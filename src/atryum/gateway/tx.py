"""Transactions of the gateway.

SQLite lets one writer in at a time, and every Atryum transaction on SQLite starts with
`BEGIN IMMEDIATE` (it takes the write lock up front). Threads that find the lock taken wait in
SQLite's busy handler, which sleeps in growing steps (1, 2, 5, 10 … 100 ms): under hook-path
load that turns a 1 ms wait into tens of milliseconds. Queueing the gateway's transactions on an
in-process lock first hands the database over as soon as it is free. PostgreSQL needs none of it.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator

import sqlalchemy as sa

_locks: weakref.WeakKeyDictionary[sa.Engine, threading.Lock] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def _lock_for(engine: sa.Engine) -> threading.Lock:
    with _guard:
        lock = _locks.get(engine)
        if lock is None:
            lock = _locks[engine] = threading.Lock()
        return lock


@contextlib.contextmanager
def begin(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()`, queued in-process on SQLite."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with _lock_for(engine), engine.begin() as conn:
        yield conn
