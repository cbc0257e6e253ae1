"""Run history reads (service layer over run_store)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from atryum.errors import NotFound
from atryum.sync import run_store


def list_runs(engine: sa.Engine, *, limit: int = 50) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        return run_store.list_runs(conn, limit=limit)


def get_run(engine: sa.Engine, *, run_id: str) -> dict[str, Any]:
    with engine.begin() as conn:
        run = run_store.get_run(conn, run_id)
    if run is None:
        raise NotFound(f"sync run {run_id} not found")
    return run
