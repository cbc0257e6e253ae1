"""`atryum run --workers N`: N server processes on one port (uvicorn's supervisor).

Every worker serves every route; the database is what they share, and it carries each worker's
changes to the others' waiters and review streams, so a decision made in one reaches a hook or
MCP client waiting in another at once: PostgreSQL's NOTIFY, or on a SQLite file the event table,
which each worker follows (`gateway.listener.follow_sqlite`). An in-memory SQLite database is
one per process, so several workers are refused there.

One worker, the first to take the scheduler lock (a file lock the kernel releases when its
process ends; the supervisor's replacement of a dead worker takes it over), runs the start-up
sync and the schedule; every worker accepts triggers and change events, and the sync lock in
the database runs one sync at a time.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from fastapi import FastAPI

from atryum.config import Config, load_config
from atryum.db.engine import is_postgres, sqlite_file

log = logging.getLogger("atryum")

#: The parent passes the config file to its workers (uvicorn starts them from an import string).
CONFIG_ENV = "ATRYUM_WORKER_CONFIG"
_held: list[IO[bytes]] = []  # the scheduler lock, held for the life of the worker process


class WorkersRefused(Exception):
    """Several workers cannot serve this configuration safely."""


def check_workers(workers: int, engine: sa.Engine) -> None:
    if workers > 1 and not is_postgres(engine) and sqlite_file(engine) is None:
        raise WorkersRefused(
            f"--workers {workers} needs a database the workers share: an in-memory SQLite "
            "database is one per process; set server.database_url to a file or PostgreSQL"
        )


def _scheduler_lock(config: Config) -> bool:
    """True in the one worker that runs the start-up sync and the schedule."""
    key = hashlib.sha256(f"{config.database_url}\n{config.server.listen_addr}".encode())
    path = Path(tempfile.gettempdir()) / f"atryum-scheduler-{key.hexdigest()[:16]}.lock"
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _held.append(handle)
    return True


def worker_app() -> FastAPI:
    """The app of one worker (uvicorn's `factory=True` entry point)."""
    from atryum import logsafe
    from atryum.app import build_context, create_app

    config = load_config(os.environ.get(CONFIG_ENV) or None)
    logsafe.configure(config.server.log_level)
    logsafe.install(logsafe.secrets_of(config))
    scheduler = _scheduler_lock(config)
    log.info("atryum worker pid=%d scheduler=%s", os.getpid(), scheduler)
    ctx = build_context(config)
    ctx.shared = True
    return create_app(ctx, background=scheduler, settle_heap=True)
