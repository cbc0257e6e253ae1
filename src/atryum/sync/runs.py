"""Run history reads (service layer over run_store)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from atryum.errors import NotFound
from atryum.sync import run_store

#: Changes shown with a single run (`GET …/runs/{id}`, `atryum sync`); the rest are paged.
CHANGES_PREVIEW = 100


def page_runs(
    engine: sa.Engine, *, offset: int = 0, limit: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """A page of runs, newest first, without their changes, and how many runs there are."""
    with engine.begin() as conn:
        return run_store.list_runs(conn, offset=offset, limit=limit)


def list_runs(engine: sa.Engine, *, limit: int = 50) -> list[dict[str, Any]]:
    """The latest runs, newest first, without their changes."""
    return page_runs(engine, limit=limit)[0]


def with_changes(conn: sa.Connection, run: dict[str, Any], limit: int) -> dict[str, Any]:
    """The run with its first `limit` changes under "changes"."""
    changes, _ = run_store.list_changes(conn, run["id"], offset=0, limit=limit)
    return {**run, "changes": changes}


def get_run(engine: sa.Engine, *, run_id: str, changes: int = CHANGES_PREVIEW) -> dict[str, Any]:
    with engine.begin() as conn:
        run = run_store.get_run(conn, run_id)
        if run is None:
            raise NotFound(f"sync run {run_id} not found")
        return with_changes(conn, run, changes)


def list_changes(
    engine: sa.Engine, *, run_id: str, offset: int, limit: int, action: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    with engine.begin() as conn:
        if run_store.get_run(conn, run_id) is None:
            raise NotFound(f"sync run {run_id} not found")
        return run_store.list_changes(conn, run_id, offset=offset, limit=limit, action=action)
