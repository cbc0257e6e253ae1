"""The cross-process sync lock: a PostgreSQL advisory lock, or a file lock next to a SQLite file.

Held on a dedicated connection (or file handle) for the whole run; a process that dies releases it
with its connection, so a kill -9 never leaves the registry locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

# Advisory locks are per database, not per schema: the lock is keyed by a class id and a hash of
# the current schema, so deployments (or test schemas) sharing one database never block each other.
SYNC_LOCK_CLASS = 0x61747279  # "atry"
_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))")


class LockTimeout(Exception):
    pass


@contextlib.contextmanager
def sync_lock(engine: sa.Engine, *, timeout: float, poll: float = 0.2) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, timeout, poll):
            yield
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # a private in-memory database: the in-process lock is enough
        return
    with _file_lock(Path(database + ".sync-lock"), timeout, poll):
        yield


@contextlib.contextmanager
def _pg_lock(engine: sa.Engine, timeout: float, poll: float) -> Iterator[None]:
    with engine.connect() as conn:
        deadline = time.monotonic() + timeout
        while not conn.execute(_TRY_LOCK, {"k": SYNC_LOCK_CLASS}).scalar_one():
            conn.rollback()
            if time.monotonic() > deadline:
                raise LockTimeout(f"another Atryum replica held the sync lock for {timeout:.0f} s")
            time.sleep(poll)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(_UNLOCK, {"k": SYNC_LOCK_CLASS})
            conn.commit()


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float, poll: float) -> Iterator[None]:
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(
                        f"another Atryum process held the sync lock for {timeout:.0f} s"
                    ) from None
                time.sleep(poll)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
